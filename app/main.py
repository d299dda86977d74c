"""The application factory: `create_app(settings)`; `app` is the default instance for uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app.errors import SafeJSONResponse, install_error_handlers
from app.keys import KeyRing
from app.metrics import Metrics
from app.middleware import BodyLimit, RequestContext
from app.openapi import build_openapi
from app.routes import examples, explain, global_methods, health, jobs, methods, models, pages
from app.settings import Settings
from jobqueue.logs import setup_logging

API_VERSION = "1.1.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings.log_level, settings.log_format)
    keyring = KeyRing.load(settings.api_keys, settings.api_keys_file, rate_limit=settings.rate_limit,
                           max_jobs=settings.max_jobs)
    from app.runtime import build_service  # the only place the API process touches torch

    service = build_service(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            if service.waiter is not None:
                await service.waiter.close()
            service.stop()

    app = FastAPI(title="Explanation service", version=API_VERSION, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None,  # served by `pages`, behind keys when they are on
                  default_response_class=SafeJSONResponse,
                  description="Attribution maps, overlays and the numbers behind them for deep-learning models. "
                  "The web page is at `/`; the contract is `docs/API.md` in the repository.")
    app.state.settings = settings
    app.state.service = service
    app.state.metrics = Metrics()
    app.state.keyring = keyring
    install_error_handlers(app)
    for module in (health, models, methods, explain, global_methods, jobs, examples, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Location", "Retry-After"], max_age=600)
    app.add_middleware(RequestContext, metrics=app.state.metrics)
    method_list = service.methods_info()  # the registry as it is when the app is made
    app.openapi = lambda: _openapi(app, method_list)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, method_list: list[dict[str, Any]]) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = build_openapi(app, method_list)
    return app.openapi_schema


def __getattr__(name: str) -> Any:
    """`app.main:app` builds the default app on first access (so importing create_app stays cheap)."""
    if name == "app":
        instance = create_app()
        globals()["app"] = instance
        return instance
    raise AttributeError(name)
