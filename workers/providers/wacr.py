"""WA.cr API v2: ``POST /messages/interactive`` with a flat body and text headers only."""

from __future__ import annotations

import re
from typing import Any

from wadispatch.errors import ConfigurationError
from wadispatch.messages import SendRequest
from wadispatch.providers.base import (
    RECIPIENT_LIMITED_TEXT,
    Outcome,
    ProviderAnswer,
    ProviderRequest,
    join_url,
    parse_retry_after,
    status_outcome,
    text_or_none,
)
from wadispatch.settings import ProviderName, Settings

PATH = "/messages/interactive"
_WINDOW_TEXT = re.compile(r"131047|24[\s-]?hour|re-?engagement", re.IGNORECASE)
_PERMANENT_CODES: dict[str, Any] = {
    "UNAUTHORIZED": "auth",
    "INSUFFICIENT_SCOPE": "auth",
    "CONTACT_OPTED_OUT": "opted_out",
    "VALIDATION_ERROR": "invalid",
    "FEATURE_LIMIT_EXCEEDED": "provider_rejected",
    "NOT_FOUND": "provider_rejected",
    "WHATSAPP_NOT_CONFIGURED": "provider_rejected",
}


class WacrAdapter:
    """Translation to and from WA.cr's interactive-message endpoint."""

    name: ProviderName = "wacr"

    def build_request(self, request: SendRequest, settings: Settings, message_id: str) -> ProviderRequest:
        if not settings.wacr_base_url:
            raise ConfigurationError("WADISPATCH_WACR_BASE_URL is not set (WA.cr names no host)")
        if settings.wacr_token is None:
            raise ConfigurationError("WADISPATCH_WACR_TOKEN is not set")
        return ProviderRequest(
            method="POST",
            url=join_url(settings.wacr_base_url, PATH),
            json=to_wacr_body(request),
            headers={
                "Authorization": f"Bearer {settings.wacr_token.get_secret_value()}",
                "Content-Type": "application/json",
            },
        )

    def classify(self, answer: ProviderAnswer) -> Outcome:
        payload = answer.json()
        payload = payload if isinstance(payload, dict) else {}
        status = answer.status_code
        if 200 <= status < 300:
            data = payload.get("data") if isinstance(payload.get("data"), dict) else payload
            if data.get("message_id"):
                return Outcome.accepted(str(data["message_id"]), status)
            return Outcome.accepted_without_id(answer.status_code, "message_id")
        code, message = _error_of(payload)
        if code == "RATE_LIMIT_EXCEEDED" or status == 429:
            wait = parse_retry_after(answer.headers.get("retry-after"), answer.received_at)
            return Outcome.rate_limited(wait, status_code=status, code=code, message=message)
        if message and RECIPIENT_LIMITED_TEXT.search(message):
            # Whatever the status (WA.cr reports Meta's failures as a 500): never retried.
            return Outcome.permanent("recipient_limited", status_code=status, code=code, message=message)
        if code == "MESSAGE_SEND_FAILED" and message and _WINDOW_TEXT.search(message):
            return Outcome.permanent("window_closed", status_code=status, code=code, message=message)
        if code in _PERMANENT_CODES:
            return Outcome.permanent(_PERMANENT_CODES[code], status_code=status, code=code, message=message)
        return status_outcome(answer, code, message)


def to_wacr_body(request: SendRequest) -> dict[str, Any]:
    """The canonical message in WA.cr's flat form."""
    interactive = request.interactive
    body: dict[str, Any] = {
        "phone": request.to,
        "type": interactive.type,
        "body_text": interactive.body.text,
    }
    if interactive.header is not None and interactive.header.text is not None:
        body["header_text"] = interactive.header.text
    if interactive.footer is not None:
        body["footer_text"] = interactive.footer.text
    action = interactive.action
    if interactive.type == "button":
        body["buttons"] = [
            {"id": button.reply.id, "title": button.reply.title} for button in action.buttons or ()
        ]
    else:
        body["list_button_text"] = action.button
        body["sections"] = [
            {
                "title": section.title,
                "rows": [row.model_dump(exclude_none=True) for row in section.rows],
            }
            for section in action.sections or ()
        ]
    return body


def _error_of(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """WA.cr's error code and message: ``error{code,message}``, or flat ``code``/``message``."""
    error = payload.get("error")
    if isinstance(error, dict):
        return text_or_none(error.get("code")), text_or_none(error.get("message"))
    if isinstance(error, str):
        return error, text_or_none(payload.get("message"))
    return text_or_none(payload.get("code")), text_or_none(payload.get("message"))
