"""``POST /webhooks/{provider}`` (and ``/webhooks/{provider}/{secret}``): provider callbacks.

Signed providers (Meta, Briq, Bird) post to ``/webhooks/<provider>``; Zixflow and WA.cr, which
sign nothing, post to ``/webhooks/<provider>/<secret>`` with a secret of our own. A bad or missing
signature is answered 401 and changes nothing; a body that is not JSON, 400; anything else 200,
unknown event types included (logged), so that providers do not retry what we cannot use, and a
status that came before the worker recorded its message's send (kept, and applied when it is:
Meta stops delivering to an endpoint that keeps failing).
``GET /webhooks/meta`` answers Meta's subscription check.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from wadispatch.api.errors import ApiError, read_body
from wadispatch.api.models import ERROR_RESPONSES, ErrorBody, WebhookReceived
from wadispatch.inbox import apply_events
from wadispatch.settings import Settings
from wadispatch.webhooks import PARSERS, MalformedWebhook, SignatureError, parse, verify

log = logging.getLogger("wadispatch.webhooks")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_RESPONSES = {
    400: ERROR_RESPONSES[400],
    401: {"model": ErrorBody, "description": "Bad or missing signature (or secret)."},
    404: {"model": ErrorBody, "description": "Not a provider wadispatch knows."},
    413: ERROR_RESPONSES[413],
}


@router.get("/meta", response_class=PlainTextResponse, responses={403: {"model": ErrorBody}})
def verify_meta_subscription(
    request: Request,
    mode: Annotated[str, Query(alias="hub.mode")],
    token: Annotated[str, Query(alias="hub.verify_token")],
    challenge: Annotated[str, Query(alias="hub.challenge")],
) -> str:
    """Meta's webhook verification: echoes ``hub.challenge`` when the verify token matches."""
    expected = request.app.state.settings.meta_verify_token
    if mode != "subscribe" or expected is None or token != expected.get_secret_value():
        raise ApiError(403, "forbidden", "the verify token does not match WADISPATCH_META_VERIFY_TOKEN")
    return challenge


@router.post("/{provider}", response_model=WebhookReceived, responses=_RESPONSES)
async def receive(provider: str, request: Request) -> WebhookReceived:
    """A signed provider's webhook (Meta, Briq, Bird)."""
    return await _receive(provider, None, request)


@router.post("/{provider}/{secret}", response_model=WebhookReceived, responses=_RESPONSES)
async def receive_with_secret(provider: str, secret: str, request: Request) -> WebhookReceived:
    """The webhook of a provider that signs nothing (Zixflow, WA.cr), with our secret in the URL."""
    return await _receive(provider, secret, request)


async def _receive(provider: str, secret: str | None, request: Request) -> WebhookReceived:
    if provider not in PARSERS:
        raise ApiError(404, "unknown_provider", f"no provider {provider!r}; one of {', '.join(PARSERS)}")
    settings: Settings = request.app.state.settings
    raw = await read_body(request, settings.api_max_body_bytes)
    try:
        verify(
            provider,
            request.headers,
            raw,
            url=_public_url(request, settings),
            url_secret=secret,
            settings=settings,
        )
    except SignatureError as exc:
        log.warning("refused a %s webhook: %s", provider, exc)
        raise ApiError(401, "invalid_signature", str(exc)) from None
    try:
        events = parse(provider, raw)
    except MalformedWebhook as exc:
        raise ApiError(400, "malformed_json", str(exc)) from None
    state = request.app.state
    result = await run_in_threadpool(
        apply_events, events, ledger=state.ledger, windows=state.windows, settings=settings
    )
    return WebhookReceived(received=len(events), outcomes=dict(result.counts))


def _public_url(request: Request, settings: Settings) -> str:
    """The URL the provider posted to (Bird signs its hash): behind a proxy, from the setting."""
    if not settings.public_base_url:
        return str(request.url)
    url = settings.public_base_url.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url
