"""The FastAPI application: messages, webhooks and campaigns routes, one error shape, OpenAPI docs.

    app = create_app()                    # the configured ledger, Redis windows and settings
    app = create_app(settings, ledger=ledger, windows=windows)   # tests and embedding

OpenAPI: ``/docs`` (Swagger UI), ``/redoc``, ``/openapi.json``; the pages' assets are local (api/docs.py).
The live operations page: ``/ops`` (api/ops.py), behind the API keys, not in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from wadispatch.api import campaigns, docs, messages, openapi, ops, scrape, webhooks
from wadispatch.api.errors import ApiError, api_error_handler, http_error_handler, validation_error_handler
from wadispatch.errors import FieldError
from wadispatch.ledger import Ledger, get_ledger
from wadispatch.settings import Settings, get_settings
from wadispatch.window import Windows, get_windows

DESCRIPTION = """
Enqueue WhatsApp interactive messages (reply buttons and lists), follow them, and receive the
providers' webhooks.

**Authentication**: every `/v1` request carries an API key (`wadispatch api-key create NAME`) as
`Authorization: Bearer <key>` or `X-API-Key: <key>`; without a valid one the answer is 401.

**Errors** all have one shape: `{"error": "<code>", "message": "...", "errors": [{"path", "rule"}]}`
(the list is filled for 422 `invalid_request`).
"""


def create_app(
    settings: Settings | None = None,
    *,
    ledger: Ledger | None = None,
    windows: Windows | None = None,
) -> FastAPI:
    """The API on these settings (default: the environment's), ledger and window store."""
    settings = settings or get_settings()
    app = FastAPI(title="wadispatch", version="0.1.0", description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.ledger = ledger or get_ledger(settings.database_url)
    app.state.windows = windows or get_windows(settings)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.include_router(messages.router)
    app.include_router(campaigns.router)
    app.include_router(webhooks.router)
    docs.add_docs(app)  # /docs and /redoc with local assets: they work without internet
    ops.add_ops(app)  # /ops, the live operations page (HTML, not in the OpenAPI schema)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, bool]:
        """Liveness: the process answers (no database or Redis round trip)."""
        return {"ok": True}

    scrape.add_metrics(app, settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _openapi_with_request_schema(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


#: Longest word (an id, a provider name) an error answer repeats from the request; longer ones
#: are cut, so a 60 KB id in a path is not echoed back whole.
SHOWN_WORD_MAX = 64


def shorten(text: str, limit: int = SHOWN_WORD_MAX) -> str:
    """``text`` with every word longer than ``limit`` characters cut to ``limit`` and ``…``."""
    if len(text) <= limit:
        return text
    return " ".join(word if len(word) <= limit else word[:limit] + "…" for word in text.split(" "))


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    """Our own error answers, with any long word from the request (an id in the path) cut."""
    assert isinstance(exc, ApiError)
    errors = [FieldError(shorten(error.path), shorten(error.rule)) for error in exc.errors]
    shown = ApiError(exc.status, exc.error, shorten(exc.message), errors, headers=exc.headers)
    return await api_error_handler(request, shown)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """The framework's errors (unknown path, wrong method) in our shape, keeping their headers:
    a 405 says the methods the path has in ``Allow`` (RFC 9110)."""
    assert isinstance(exc, StarletteHTTPException)
    response = await http_error_handler(request, exc)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request)) or response.headers.get("Allow", "")
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path takes: the router names only the first such route's
    (``GET /webhooks/meta`` would hide ``POST /webhooks/{provider}``)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _openapi_with_request_schema(app: FastAPI) -> dict[str, Any]:
    """The generated schema, plus the message body's (read by our own validation, not FastAPI's)
    with WhatsApp's limits, and every error answer in the one error shape."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components[messages.REQUEST_SCHEMA] = openapi.request_schema()
    return openapi.document_errors(schema)
