"""Meta WhatsApp Cloud API: ``POST /{phone-number-id}/messages``, classified by ``error.code``.

Sends the interactive message (``type: "interactive"``) or, for a closed 24-hour window, the
message's fallback template (``type: "template"``, :func:`template_json`).

A phone number goes out as ``to`` (digits); a business-scoped user id as ``recipient`` (Meta's
answer then names the contact by ``contacts[].user_id`` instead of ``wa_id``; the message id in
``messages[0].id`` is what is recorded either way).
"""

from __future__ import annotations

from typing import Any

from wadispatch.errors import ConfigurationError
from wadispatch.messages import SendRequest
from wadispatch.providers.base import (
    Outcome,
    PermanentReason,
    ProviderAnswer,
    ProviderRequest,
    interactive_json,
    join_url,
    parse_retry_after,
    text_or_none,
)
from wadispatch.settings import ProviderName, Settings
from wadispatch.templates import FallbackTemplate

RATE_LIMIT_CODES = frozenset({4, 613, 80007, 130429, 131056})
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 131057})
PERMANENT_CODES: dict[int, PermanentReason] = {
    131047: "window_closed",
    470: "window_closed",
    131050: "opted_out",
    131049: "recipient_limited",
    131062: "recipient_unsupported",
    0: "auth",
    10: "auth",
    190: "auth",
    100: "invalid",
    131008: "invalid",
    131009: "invalid",
    131051: "invalid",
}


class MetaAdapter:
    """Translation to and from the WhatsApp Cloud API's messages endpoint."""

    name: ProviderName = "meta"

    def build_request(self, request: SendRequest, settings: Settings, message_id: str) -> ProviderRequest:
        return self._message(request, settings, "interactive", interactive_json(request))

    def build_template_request(
        self, request: SendRequest, template: FallbackTemplate, settings: Settings, message_id: str
    ) -> ProviderRequest:
        """The send of ``template`` (``type: "template"``) to the request's recipient, from its sender."""
        return self._message(request, settings, "template", template_json(template))

    def _message(
        self, request: SendRequest, settings: Settings, kind: str, content: dict[str, Any]
    ) -> ProviderRequest:
        if settings.meta_access_token is None:
            raise ConfigurationError("WADISPATCH_META_ACCESS_TOKEN is not set")
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        # Meta reads `to` first when both are given: a BSUID send carries `recipient` alone.
        if request.to_is_bsuid:
            body["recipient"] = request.to
        else:
            body["to"] = request.recipient_digits
        body["type"] = kind
        body[kind] = content
        return ProviderRequest(
            method="POST",
            url=join_url(settings.meta_base_url, f"{request.sender}/messages"),
            json=body,
            headers={
                "Authorization": f"Bearer {settings.meta_access_token.get_secret_value()}",
                "Content-Type": "application/json",
            },
        )

    def classify(self, answer: ProviderAnswer) -> Outcome:
        payload = answer.json()
        payload = payload if isinstance(payload, dict) else {}
        status = answer.status_code
        error = payload.get("error") if isinstance(payload.get("error"), dict) else None
        if 200 <= status < 300 and error is None:
            messages = payload.get("messages")
            first = messages[0] if isinstance(messages, list) and messages else None
            if isinstance(first, dict) and first.get("id"):
                return Outcome.accepted(str(first["id"]), status)
            return Outcome.accepted_without_id(answer.status_code, "messages[0].id")

        error = error or {}
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) else _int_or_none(raw_code)
        details = (
            error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
        )
        message = text_or_none(details or error.get("message"))
        code_text = text_or_none(raw_code)
        if code in RATE_LIMIT_CODES or (code is None and status == 429):
            wait = parse_retry_after(answer.headers.get("retry-after"), answer.received_at)
            return Outcome.rate_limited(wait, status_code=status, code=code_text, message=message)
        if code in TRANSIENT_CODES or (code is None and status >= 500):
            return Outcome.transient("server_error", status_code=status, code=code_text, message=message)
        if code in PERMANENT_CODES:
            return Outcome.permanent(
                PERMANENT_CODES[code], status_code=status, code=code_text, message=message
            )
        if code is not None and 200 <= code <= 299:
            return Outcome.permanent("auth", status_code=status, code=code_text, message=message)
        if code is None and status in (401, 403):
            return Outcome.permanent("auth", status_code=status, message=message)
        if code is None and status >= 500:
            return Outcome.transient("server_error", status_code=status, message=message)
        return Outcome.permanent("provider_rejected", status_code=status, code=code_text, message=message)


def template_json(template: FallbackTemplate) -> dict[str, Any]:
    """Meta's ``template`` object: name, ``language.code``, a ``body`` component with one text
    parameter per variable, and one ``quick_reply`` button component per payload (by index)."""
    components: list[dict[str, Any]] = []
    if template.body_parameters:
        parameters = [{"type": "text", "text": text} for text in template.body_parameters]
        components.append({"type": "body", "parameters": parameters})
    for index, payload in enumerate(template.quick_replies):
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(index),
                "parameters": [{"type": "payload", "payload": payload}],
            }
        )
    content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        content["components"] = components
    return content


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
