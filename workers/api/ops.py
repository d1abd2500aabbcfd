"""The live operations page, ``/ops``: campaigns, senders, the queue, failures, a message lookup.

Server-rendered (Jinja2 templates beside this module) and kept live by htmx, which replaces the
page's live part with ``/ops/live`` every 2 s. htmx 2.0.11 (BSD Zero Clause, from the npm package
``htmx.org``; its license is ``static/htmx-LICENSE.txt``) and the page's stylesheet are served from
``/ops/static/``: nothing is loaded from elsewhere, and the Content-Security-Policy says so.

**Access**: the same API keys as ``/v1``. A browser signs in with HTTP Basic auth, the key as the
password (any user name): the browser asks once and sends it with every request of the page, its
live updates included. Scripts may send ``Authorization: Bearer <key>`` or ``X-API-Key`` instead.
Basic auth sends the key with each request, as Bearer does: serve the API over TLS beyond localhost.
The page and its parts only read (the campaigns' progress marks a finished campaign ``done``, as
``GET /v1/campaigns/{id}`` does), so a request forged from another site could change nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from wadispatch.api import ops_view
from wadispatch.api.auth import check_api_key
from wadispatch.api.errors import ApiError
from wadispatch.campaigns import api as campaigns
from wadispatch.campaigns.live import Live
from wadispatch.errors import UnknownMessage
from wadispatch.ledger import ApiKeyRecord, Ledger, aware, messages, utcnow
from wadispatch.redaction import mask_recipient
from wadispatch.settings import Settings
from wadispatch.states import State

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
#: The files served under /ops/static, with their media types; nothing else there is served.
STATIC = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "htmx-LICENSE.txt": "text/plain; charset=utf-8",
    "ops.css": "text/css; charset=utf-8",
}
#: How often the page asks for its live part.
REFRESH_SECONDS = 2
#: Campaigns shown: the latest ones.
CAMPAIGNS_SHOWN = 8
FAILURES_SHOWN = 15
REALM = 'Basic realm="wadispatch operations", charset="UTF-8"'
PAGE_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_bearer = HTTPBearer(auto_error=False)
_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_basic = HTTPBasic(auto_error=False, realm="wadispatch operations")

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def require_ops_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
    basic: Annotated[HTTPBasicCredentials | None, Security(_basic)],
) -> ApiKeyRecord:
    """An API key from Basic auth (the password), Bearer or X-API-Key; else a 401 that makes a
    browser ask for it."""
    key = bearer.credentials if bearer is not None else header or (basic.password if basic else None)
    try:
        return check_api_key(request.app.state.ledger, key)
    except ApiError as exc:
        raise ApiError(exc.status, exc.error, exc.message, headers={"WWW-Authenticate": REALM}) from None


router = APIRouter(prefix="/ops", include_in_schema=False)
keyed = [Depends(require_ops_key)]


@router.get("", dependencies=keyed)
async def page(request: Request) -> HTMLResponse:
    """The whole page, its live part filled in."""
    live = await run_in_threadpool(read_live, request.app.state.ledger, request.app.state.settings)
    return _html("ops.html", request, live=live, refresh=REFRESH_SECONDS, lookup=None)


@router.get("/live", dependencies=keyed)
async def live_part(request: Request) -> HTMLResponse:
    """The live part alone (what htmx swaps in every REFRESH_SECONDS)."""
    live = await run_in_threadpool(read_live, request.app.state.ledger, request.app.state.settings)
    return _html("ops_live.html", request, live=live)


@router.get("/message", dependencies=keyed)
async def message(
    request: Request,
    message_id: Annotated[str, Query(alias="id", max_length=64, description="A message id.")] = "",
) -> HTMLResponse:
    """A message's state, attempts and transitions: a part for htmx, or the whole page without it."""
    lookup = await run_in_threadpool(read_message, request.app.state.ledger, message_id.strip())
    if request.headers.get("HX-Request") == "true":
        return _html("ops_message.html", request, lookup=lookup)
    live = await run_in_threadpool(read_live, request.app.state.ledger, request.app.state.settings)
    return _html("ops.html", request, live=live, refresh=REFRESH_SECONDS, lookup=lookup)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    """The page's script and stylesheet (public: they hold no data)."""
    if name not in STATIC:
        raise StarletteHTTPException(404)
    return FileResponse(
        STATIC_DIR / name, media_type=STATIC[name], headers={"Cache-Control": "public, max-age=3600"}
    )


def add_ops(app: FastAPI) -> None:
    """Serve the operations page on ``app``."""
    app.include_router(router)


# --- reads -----------------------------------------------------------------------------------------


def read_live(ledger: Ledger, settings: Settings) -> dict[str, Any]:
    """Everything the live part shows, read now (blocking)."""
    live = Live(settings)
    progress = [
        campaigns.progress(record.id, ledger=ledger, settings=settings, live=live)
        for record in campaigns.list_campaigns(ledger=ledger, limit=CAMPAIGNS_SHOWN)
    ]
    senders = dict.fromkeys((item.campaign.provider, item.campaign.sender) for item in progress)
    limits = [live.sender(provider, sender) for provider, sender in senders]
    return {
        "campaigns": [ops_view.campaign_row(item) for item in progress],
        "senders": ops_view.sender_rows(limits, progress),
        "queue": ops_view.queue_row(live.queue()),
        "failures": recent_failures(ledger),
        "read_at": ops_view.moment(utcnow()),
    }


def recent_failures(ledger: Ledger, limit: int = FAILURES_SHOWN) -> list[ops_view.FailureRow]:
    """The latest failed messages, newest first (one indexed query on state and time)."""
    m = messages.c
    statement = (
        select(m.id, m.updated_at, m.provider, m.sender, m.recipient, m.reason)
        .add_columns(m.provider_error_code, m.campaign_id)
        .where(m.state == State.FAILED.value)
        .order_by(m.updated_at.desc())
        .limit(limit)
    )
    with ledger.engine.connect() as conn:
        rows = conn.execute(statement).all()
    return [ops_view.failure_row(row[0], aware(row[1]), *row[2:]) for row in rows]


def read_message(ledger: Ledger, message_id: str) -> dict[str, Any]:
    """A message and its transitions for the lookup (recipient masked), or what was wrong."""
    if not message_id:
        return {"id": "", "error": "give a message id"}
    if "\x00" in message_id:  # no id holds one (and PostgreSQL refuses it in a query)
        return {"id": message_id.replace("\x00", ""), "error": "no such message"}
    try:
        record = ledger.get(message_id)
    except UnknownMessage:
        return {"id": message_id, "error": "no such message"}
    history = ledger.transitions(message_id)
    return {
        "id": message_id,
        "error": None,
        "record": {
            "state": record.state.value,
            "reason": record.reason or "-",
            "provider": record.provider,
            "sender": record.sender or "-",
            "recipient": mask_recipient(record.recipient),
            "attempts": record.attempts,
            "provider_message_id": record.provider_message_id or "-",
            "provider_error": " ".join(
                part for part in (record.provider_error_code, record.provider_error_message) if part
            )
            or "-",
            "created": ops_view.moment(record.created_at),
            "updated": ops_view.moment(record.updated_at),
        },
        "transitions": [
            {
                "at": ops_view.moment(item.at),
                "move": f"{item.from_state.value if item.from_state else '(new)'} → {item.to_state.value}",
                "attempt": item.attempt,
                "reason": item.reason or "",
                "detail": _detail(item.detail),
            }
            for item in history
        ],
    }


def _detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    keys = ("outcome", "status_code", "provider_code", "retry_in", "gave_up")
    return ", ".join(f"{key} {detail[key]}" for key in keys if key in detail)


def _html(template: str, request: Request, **context: Any) -> HTMLResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    body = templates.get_template(template).render(root=root, **context)
    return HTMLResponse(body, headers=PAGE_HEADERS)
