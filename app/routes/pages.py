"""The web page at `/` and the API docs (`/docs`, `/redoc`), all served from the app's own files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from app.auth import access
from app.errors import SafeJSONResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
VENDOR = "/static/vendor"
FAVICON = "/static/favicon.svg"
TITLE = "Explanation service"

# Nothing on these pages may reach another origin (ReDoc would fetch its logo from its CDN: the browser
# refuses, and ReDoc drops the logo). Inline styles stay allowed: the text renderer's HTML uses them.
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self' blob: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
DOCS_CSP = PAGE_CSP + "; script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"  # their inline start-up

router = APIRouter(include_in_schema=False)
DOCS = [access("docs_access")]


@router.get("/openapi.json", dependencies=DOCS)
def openapi(request: Request) -> SafeJSONResponse:
    return SafeJSONResponse(request.app.openapi())


@router.get("/")  # the page itself is public (a browser cannot send a key with a page load); its calls are not
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                        headers={"Content-Security-Policy": PAGE_CSP})


@router.get("/docs", dependencies=DOCS)
def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{TITLE} - Swagger UI",
                               swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
                               swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css", swagger_favicon_url=FAVICON,
                               swagger_ui_parameters={"validatorUrl": None})  # no badge from the validator site
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get("/redoc", dependencies=DOCS)
def redoc() -> HTMLResponse:
    page = get_redoc_html(openapi_url="/openapi.json", title=f"{TITLE} - ReDoc",
                          redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js", redoc_favicon_url=FAVICON,
                          with_google_fonts=False)
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
