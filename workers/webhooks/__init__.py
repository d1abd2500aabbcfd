"""Provider webhooks: check the signature, then parse the body into typed events. Pure: no I/O.

    verify(provider, headers, raw, url=..., url_secret=..., settings=..., now=...)  # or SignatureError
    events = parse(provider, raw)   # [Inbound | Reply | Status | SystemMessage | Unknown],
                                    # or MalformedWebhook

Applying the events (ledger, window, user tasks) is :mod:`wadispatch.inbox`'s job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr
from wadispatch.errors import MalformedWebhook, SignatureError
from wadispatch.settings import Settings
from wadispatch.webhooks import bird, briq, meta, wacr, zixflow
from wadispatch.webhooks.common import load_json
from wadispatch.webhooks.events import (
    Inbound,
    MessageRef,
    Reply,
    Status,
    SystemMessage,
    Unknown,
    WebhookEvent,
)
from wadispatch.webhooks.signatures import (
    verify_bird,
    verify_briq,
    verify_meta,
    verify_url_secret,
)

PARSERS: dict[str, Callable[[Any], list[WebhookEvent]]] = {
    "briq": briq.parse,
    "bird": bird.parse,
    "zixflow": zixflow.parse,
    "wacr": wacr.parse,
    "meta": meta.parse,
}

#: The setting holding each provider's webhook secret.
SECRET_SETTINGS = {
    "briq": "briq_webhook_secret",
    "bird": "bird_signing_key",
    "zixflow": "zixflow_webhook_secret",
    "wacr": "wacr_webhook_secret",
    "meta": "meta_app_secret",
}


def parse(provider: str, raw: bytes) -> list[WebhookEvent]:
    """The events of one webhook body; :class:`MalformedWebhook` when it is not the JSON expected."""
    return PARSERS[provider](load_json(raw))


def verify(
    provider: str,
    headers: Mapping[str, str],
    raw: bytes,
    *,
    url: str,
    url_secret: str | None,
    settings: Settings,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the webhook is signed with the configured secret.

    ``headers`` are looked up by lower-case name; ``url`` is the URL the provider posted to.
    """
    setting = SECRET_SETTINGS[provider]
    secret: SecretStr | None = getattr(settings, setting)
    if secret is None:
        raise SignatureError(f"no secret configured: set WADISPATCH_{setting.upper()}")
    value = secret.get_secret_value()
    headers = {name.lower(): header for name, header in headers.items()}
    if provider == "meta":
        verify_meta(headers, raw, value)
    elif provider == "briq":
        verify_briq(headers, raw, value)
    elif provider == "bird":
        verify_bird(
            headers,
            raw,
            url,
            value,
            time.time() if now is None else now,
            max_lifetime=settings.bird_jwt_max_lifetime_seconds,
        )
    else:
        verify_url_secret(url_secret, value)


__all__ = [
    "PARSERS",
    "Inbound",
    "MalformedWebhook",
    "MessageRef",
    "Reply",
    "SignatureError",
    "Status",
    "SystemMessage",
    "Unknown",
    "WebhookEvent",
    "parse",
    "verify",
]
