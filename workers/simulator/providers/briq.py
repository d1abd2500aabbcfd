"""Briq "Karibu": ``POST /v1/whatsapp/messages/interactive`` with ``X-API-Key``.

Answers (docs/providers.md): 202 ``{"success": true, "data": {message_id, conversation_id,
sender_id, sender, provider_message_id, status: "pending"}, "errors": null, "request_id"}``;
refusals ``{"success": false, "data": null, "errors": [{code, message, field}], "request_id"}``.
Webhooks (assumed): ``{"event_id", "event": "whatsapp.<status>" | "whatsapp.inbound", "created_at",
"data": {...}}`` signed with ``X-Briq-Signature: <hex HMAC-SHA256>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from wadispatch.simulator.config import SimulatorConfig
from wadispatch.simulator.providers.base import (
    UNDELIVERABLE,
    Answer,
    Choice,
    Dialect,
    InvalidRequest,
    RefusalKind,
    SendInfo,
    Sent,
    StatusKind,
    iso_time,
    new_wamid,
    require_object,
    require_string,
)
from wadispatch.simulator.providers.interactive import check_interactive, check_phone
from wadispatch.simulator.signing import hmac_sha256_hex

_NAMESPACE = uuid.UUID("6f1c0b9e-5b7a-4c1e-9a53-2f4d1b7e8c01")
DEFAULT_SENDER = "default"

_REFUSALS: dict[RefusalKind, tuple[int, str, str, str | None]] = {
    "rate_limited": (429, "RATE_LIMITED", "Too many requests; retry later", None),
    "transient": (503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable", None),
    "auth": (401, "UNAUTHORIZED", "Invalid or missing API key", None),
    "window_closed": (
        422,
        "WINDOW_CLOSED",
        "The 24-hour customer service window is closed for this recipient",
        "to",
    ),
    "opted_out": (422, "OPTED_OUT", "The recipient has opted out of messages", "to"),
    "invalid": (422, "VALIDATION_ERROR", "The request is invalid", None),
}


class Briq(Dialect):
    """Briq's API; remembers the conversations it created so ``conversation_id`` resolves."""

    name = "briq"

    def __init__(self) -> None:
        self._conversations: dict[str, tuple[str, str]] = {}

    def sender_hint(self, params: Mapping[str, str], body: Any) -> str:
        if isinstance(body, dict):
            known = self._conversations.get(str(body.get("conversation_id")))
            if known is not None:
                return known[0]
            sender = body.get("sender")
            if isinstance(sender, str) and sender:
                return sender
        return DEFAULT_SENDER

    def credentials(self, headers: Mapping[str, str]) -> tuple[str, ...]:
        key = headers.get("X-API-Key", "").strip()
        return (key,) if key else ()

    def parse(self, params: Mapping[str, str], body: Any) -> SendInfo:
        data = require_object(body)
        if "interactive" not in data:
            raise InvalidRequest("interactive", "is required")
        kind, choices = check_interactive(data["interactive"])
        sender = require_string(data, "sender", "sender", max_length=64, required=False)
        conversation_id = data.get("conversation_id")
        if conversation_id is not None:
            try:
                conversation_id = str(uuid.UUID(str(conversation_id)))
            except ValueError:
                raise InvalidRequest("conversation_id", "must be a UUID") from None
            known = self._conversations.get(conversation_id)
            if known is not None:
                sender, recipient = known
                return SendInfo(sender, recipient, kind, choices, conversation_id=conversation_id)
            return SendInfo(sender or DEFAULT_SENDER, None, kind, choices, conversation_id=conversation_id)
        if "to" not in data:
            raise InvalidRequest("to", "is required (or conversation_id)")
        recipient = check_phone(data["to"], "to")
        return SendInfo(sender or DEFAULT_SENDER, recipient, kind, choices)

    def accepted(self, info: SendInfo, now: float) -> tuple[Answer, Sent]:
        message_id = str(uuid.uuid4())
        conversation_id = info.conversation_id or str(
            uuid.uuid5(_NAMESPACE, f"{info.sender}:{info.recipient}")
        )
        if info.recipient is not None:
            self._conversations[conversation_id] = (info.sender, info.recipient)
        wamid = new_wamid()
        data = {
            "message_id": message_id,
            "conversation_id": conversation_id,
            "sender_id": str(uuid.uuid5(_NAMESPACE, f"sender:{info.sender}")),
            "sender": info.sender,
            "provider_message_id": wamid,
            "status": "pending",
        }
        body = {"success": True, "data": data, "errors": None, "request_id": str(uuid.uuid4())}
        ids = {"conversation_id": conversation_id, "provider_message_id": wamid}
        return Answer(202, body), Sent(self.name, info, message_id, now, ids)

    def refusal(self, kind: RefusalKind, *, field: str | None = None, message: str | None = None) -> Answer:
        status, code, default_message, default_field = _REFUSALS[kind]
        if field and message and message[0].islower():
            message = f"{field} {message}"
        error = {"code": code, "message": message or default_message, "field": field or default_field}
        body = {"success": False, "data": None, "errors": [error], "request_id": str(uuid.uuid4())}
        return Answer(status, body)

    def status_event(self, sent: Sent, status: StatusKind, now: float) -> dict[str, Any]:
        error = {"code": "UNDELIVERABLE", "message": UNDELIVERABLE} if status == "failed" else None
        return self._event(
            f"whatsapp.{status}",
            now,
            {
                "message_id": sent.message_id,
                "conversation_id": sent.ids["conversation_id"],
                "sender": sent.info.sender,
                "to": sent.info.recipient,
                "provider_message_id": sent.ids["provider_message_id"],
                "status": status,
                "error": error,
            },
        )

    def reply_event(self, sent: Sent, choice: Choice, now: float) -> dict[str, Any]:
        reply_type = "button_reply" if sent.info.kind == "button" else "list_reply"
        reply: dict[str, Any] = {"id": choice.id, "title": choice.title}
        if reply_type == "list_reply" and choice.description:
            reply["description"] = choice.description
        return self._event(
            "whatsapp.inbound",
            now,
            {
                "message_id": str(uuid.uuid4()),
                "conversation_id": sent.ids["conversation_id"],
                "sender": sent.info.sender,
                "from": sent.info.recipient,
                "direction": "inbound",
                "type": "interactive",
                "interactive": {"type": reply_type, reply_type: reply},
                "context": {
                    "message_id": sent.message_id,
                    "provider_message_id": sent.ids["provider_message_id"],
                },
                "provider_message_id": new_wamid(),
            },
        )

    def signature_headers(self, raw: bytes, url: str, config: SimulatorConfig) -> dict[str, str]:
        return {"X-Briq-Signature": hmac_sha256_hex(config.briq_webhook_secret, raw)}

    @staticmethod
    def _event(event: str, now: float, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "event_id": str(uuid.uuid4()),
            "event": event,
            "created_at": iso_time(now),
            "data": data,
        }
