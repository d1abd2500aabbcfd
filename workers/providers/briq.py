"""Briq "Karibu": ``POST /v1/whatsapp/messages/interactive``, the WhatsApp object passed as-is."""

from __future__ import annotations

from typing import Any

from wadispatch.errors import ConfigurationError
from wadispatch.messages import SendRequest
from wadispatch.providers.base import (
    Outcome,
    ProviderAnswer,
    ProviderRequest,
    interactive_json,
    join_url,
    parse_retry_after,
    status_outcome,
    text_or_none,
)
from wadispatch.settings import ProviderName, Settings

PATH = "/v1/whatsapp/messages/interactive"


class BriqAdapter:
    """Translation to and from Briq's interactive-message endpoint."""

    name: ProviderName = "briq"

    def build_request(self, request: SendRequest, settings: Settings, message_id: str) -> ProviderRequest:
        if settings.briq_api_key is None:
            raise ConfigurationError("WADISPATCH_BRIQ_API_KEY is not set")
        body: dict[str, Any] = {"interactive": interactive_json(request)}
        if request.conversation_id is not None:
            body["conversation_id"] = str(request.conversation_id)
        else:
            body["to"] = request.recipient_digits
            if request.sender is not None:
                body["sender"] = request.sender
        return ProviderRequest(
            method="POST",
            url=join_url(settings.briq_base_url, PATH),
            json=body,
            headers={
                "X-API-Key": settings.briq_api_key.get_secret_value(),
                "Content-Type": "application/json",
            },
        )

    def classify(self, answer: ProviderAnswer) -> Outcome:
        payload = answer.json()
        payload = payload if isinstance(payload, dict) else {}
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        if 200 <= answer.status_code < 300 and payload.get("success", True):
            message_id = data.get("message_id") or data.get("provider_message_id")
            if message_id:
                return Outcome.accepted(str(message_id), answer.status_code)
            return Outcome.accepted_without_id(answer.status_code, "data.message_id")

        error = _first_error(payload)
        code = text_or_none(error.get("code"))
        message = text_or_none(error.get("message"))
        status = answer.status_code
        if code == "RATE_LIMITED" or status == 429:
            wait = parse_retry_after(answer.headers.get("retry-after"), answer.received_at)
            return Outcome.rate_limited(wait, status_code=status, code=code, message=message)
        if code == "WINDOW_CLOSED":
            return Outcome.permanent("window_closed", status_code=status, code=code, message=message)
        if code == "OPTED_OUT":
            return Outcome.permanent("opted_out", status_code=status, code=code, message=message)
        return status_outcome(answer, code, message)


def _first_error(payload: dict[str, Any]) -> dict[str, Any]:
    errors = payload.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return {}
