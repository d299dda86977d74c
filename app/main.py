"""The application factory: `create_app(settings)`; `app` is the default instance for uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.errors import install_error_handlers
from app.metrics import Metrics
from app.middleware import BodyLimit, RequestMetrics
from app.routes import explain, health, jobs, methods, models
from app.schemas import ExplainRequest
from app.settings import Settings

API_VERSION = "1.0.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app.runtime import build_service  # the only place the API process touches torch

    service = build_service(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="Explanation service", version=API_VERSION, lifespan=lifespan,
                  description="Attribution maps, overlays and the numbers behind them for deep-learning models.")
    app.state.settings = settings
    app.state.service = service
    app.state.metrics = Metrics()
    install_error_handlers(app)
    for module in (health, models, methods, explain, jobs):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated spec plus the schemas that only the explain route's raw body refers to."""
    if app.openapi_schema is None:
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        extra = ExplainRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(extra.pop("$defs", {}))
        schemas["ExplainRequest"] = extra
        app.openapi_schema = spec
    return app.openapi_schema


def __getattr__(name: str) -> Any:
    """`app.main:app` builds the default app on first access (so importing create_app stays cheap)."""
    if name == "app":
        instance = create_app()
        globals()["app"] = instance
        return instance
    raise AttributeError(name)
