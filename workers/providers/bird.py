"""Bird (MessageBird) Conversations API: ``POST /v1/send`` with flat reply buttons."""

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
    status_outcome,
    text_or_none,
)
from wadispatch.settings import ProviderName, Settings

PATH = "/v1/send"
WINDOW_CODES = frozenset({"470", "131047"})
OPTED_OUT_CODES = frozenset({"131050"})
RECIPIENT_LIMITED_CODES = frozenset({"131049"})
AUTH_CODES = frozenset({"2"})


class BirdAdapter:
    """Translation to and from Bird's Conversations ``send`` endpoint."""

    name: ProviderName = "bird"

    def build_request(self, request: SendRequest, settings: Settings, message_id: str) -> ProviderRequest:
        if settings.bird_access_key is None:
            raise ConfigurationError("WADISPATCH_BIRD_ACCESS_KEY is not set")
        return ProviderRequest(
            method="POST",
            url=join_url(settings.bird_base_url, PATH),
            json={
                "to": request.to,
                "from": request.sender,
                "type": "interactive",
                "content": {"interactive": to_bird_interactive(interactive_json(request))},
            },
            headers={
                "Authorization": f"AccessKey {settings.bird_access_key.get_secret_value()}",
                "Content-Type": "application/json; charset=utf-8",
            },
        )

    def classify(self, answer: ProviderAnswer) -> Outcome:
        payload = answer.json()
        payload = payload if isinstance(payload, dict) else {}
        if 200 <= answer.status_code < 300:
            if payload.get("id"):
                return Outcome.accepted(str(payload["id"]), answer.status_code)
            return Outcome.accepted_without_id(answer.status_code, "id")
        errors = payload.get("errors")
        error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code = text_or_none(error.get("code"))
        message = text_or_none(error.get("description"))
        status = answer.status_code
        if code in RECIPIENT_LIMITED_CODES:
            # Whatever the status: a retry within 24 hours can block the person for a day.
            return Outcome.permanent("recipient_limited", status_code=status, code=code, message=message)
        if status != 429 and status < 500:
            if code in WINDOW_CODES:
                return Outcome.permanent("window_closed", status_code=status, code=code, message=message)
            if code in OPTED_OUT_CODES:
                return Outcome.permanent("opted_out", status_code=status, code=code, message=message)
            if code in AUTH_CODES:
                return Outcome.permanent("auth", status_code=status, code=code, message=message)
        return status_outcome(answer, code, message)


def to_bird_interactive(interactive: dict[str, Any]) -> dict[str, Any]:
    """WhatsApp's object in Bird's dialect: flat buttons, media ``link`` as ``url``."""
    converted = dict(interactive)
    action = dict(interactive["action"])
    if "buttons" in action:
        action["buttons"] = [
            {"id": button["reply"]["id"], "type": "reply", "title": button["reply"]["title"]}
            for button in action["buttons"]
        ]
    converted["action"] = action
    header = interactive.get("header")
    if header is not None and header["type"] != "text":
        media = dict(header[header["type"]])
        if "link" in media:
            media["url"] = media.pop("link")
        converted["header"] = {"type": header["type"], header["type"]: media}
    return converted
