"""The OpenAPI pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served with local assets.

FastAPI's default pages load Swagger UI, ReDoc, a favicon and Google Fonts from public CDNs, so on a
server without internet they stay blank. Here the same pages (FastAPI's own ``get_swagger_ui_html``
and ``get_redoc_html``) point at ``/docs-assets/…``, which the API answers from the files the
``fastapi-offline`` package installs (Swagger UI 5 and ReDoc 2 bundles); ReDoc's Google Fonts are
off and Swagger UI's online validator badge too. Like FastAPI's, the pages are public (no API key):
they show only the schema ``/openapi.json`` already publishes.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"
#: Where fastapi-offline keeps its copies of the Swagger UI and ReDoc bundles.
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
#: The files served under ASSETS_URL, with their media types; nothing else there is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
#: The files change only with the installed package: let browsers keep them for a day.
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400"}
#: What the pages may load: only from the API itself (inline scripts and styles are Swagger UI's
#: start-up script and ReDoc's styles, blob: workers ReDoc's search). This also keeps the browser
#: from fetching the one image ReDoc's bundle names by an absolute URL (Redocly's logo under its
#: menu; the image is then left out).
PAGE_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "worker-src 'self' blob:",
            "connect-src 'self'",
            "frame-ancestors 'self'",
        ]
    )
}


def add_docs(app: FastAPI) -> None:
    """Serve ``/docs``, its OAuth2 redirect page, ``/redoc`` and their assets on ``app`` (created with
    ``docs_url=None, redoc_url=None``), for the schema at ``app.openapi_url``."""
    assert app.openapi_url and app.swagger_ui_oauth2_redirect_url
    openapi_url = app.openapi_url
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url
    swagger_parameters = {**(app.swagger_ui_parameters or {}), "validatorUrl": None}

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + oauth2_redirect_url,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=swagger_parameters,
        )
        page.headers.update(PAGE_HEADERS)
        return page

    @app.get(oauth2_redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(PAGE_HEADERS)
        return page

    @app.get(ASSETS_URL + "/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise StarletteHTTPException(404)
        return FileResponse(ASSETS_DIR / name, media_type=ASSETS[name], headers=ASSET_HEADERS)


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the API under (uvicorn's ``--root-path``), as FastAPI's pages use it."""
    return str(request.scope.get("root_path", "")).rstrip("/")
