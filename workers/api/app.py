"""The FastAPI application: messages, webhooks and campaigns routes, one error shape, OpenAPI docs.

    app = create_app()                    # the configured ledger, Redis windows and settings
    app = create_app(settings, ledger=ledger, windows=windows)   # tests and embedding

OpenAPI: ``/docs`` (Swagger UI), ``/redoc``, ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from wadispatch.api import campaigns, messages, webhooks
from wadispatch.api.errors import ApiError, api_error_handler, http_error_handler, validation_error_handler
from wadispatch.ledger import Ledger, get_ledger
from wadispatch.messages import SendRequest
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
    app = FastAPI(title="wadispatch", version="0.1.0", description=DESCRIPTION)
    app.state.settings = settings
    app.state.ledger = ledger or get_ledger(settings.database_url)
    app.state.windows = windows or get_windows(settings)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.include_router(messages.router)
    app.include_router(campaigns.router)
    app.include_router(webhooks.router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, bool]:
        """Liveness: the process answers (no database or Redis round trip)."""
        return {"ok": True}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _openapi_with_request_schema(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _openapi_with_request_schema(app: FastAPI) -> dict[str, Any]:
    """The generated schema, plus the message body's (read by our own validation, not FastAPI's)."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    body = SendRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    body["title"] = messages.REQUEST_SCHEMA
    components[messages.REQUEST_SCHEMA] = body
    return schema
