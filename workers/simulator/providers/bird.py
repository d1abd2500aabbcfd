"""Bird (MessageBird) Conversations API: ``POST /v1/send`` with ``Authorization: AccessKey <key>``.

Answers (docs/providers.md): 202 ``{"id", "status": "accepted"}``; refusals
``{"errors": [{"code": <int>, "description", "parameter"}]}``. Webhooks: a reply is the message
resource of provider-docs 002 (``direction: "received"``, ``replyTo.id``); a status update (assumed)
is the sent message resource as it now is (``direction: "sent"``, ``status``, and ``error`` when
failed). Signed with ``MessageBird-Signature-JWT``.
"""

from __future__ import annotations

import time
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
    bearer,
    business_number,
    iso_time,
    require_object,
    require_string,
)
from wadispatch.simulator.providers.interactive import check_interactive, check_phone
from wadispatch.simulator.signing import bird_signature_jwt

_NAMESPACE = uuid.UUID("0b7f3a51-2c64-4e9d-8d0a-5e1f6c2b9a77")

_REFUSALS: dict[RefusalKind, tuple[int, int, str, str | None]] = {
    "rate_limited": (429, 429, "Too many requests", None),
    "transient": (500, 99, "Internal error", None),
    "auth": (401, 2, "Request not allowed (incorrect access_key)", "access_key"),
    "window_closed": (
        422,
        470,
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number",
        "to",
    ),
    "opted_out": (
        422,
        131050,
        "Unable to deliver the message: the user has stopped receiving messages from this business",
        "to",
    ),
    "invalid": (422, 10, "Invalid parameters", None),
}


class Bird(Dialect):
    """Bird's Conversations API."""

    name = "bird"

    def sender_hint(self, params: Mapping[str, str], body: Any) -> str:
        if isinstance(body, dict) and isinstance(body.get("from"), str) and body["from"]:
            return body["from"]
        return "?"

    def credentials(self, headers: Mapping[str, str]) -> tuple[str, ...]:
        return bearer(headers, "AccessKey")

    def parse(self, params: Mapping[str, str], body: Any) -> SendInfo:
        data = require_object(body)
        recipient = check_phone(data.get("to"), "to")
        sender = require_string(data, "from", "from")
        assert sender is not None
        if data.get("type") != "interactive":
            raise InvalidRequest("type", "must be interactive")
        content = require_object(data.get("content"), "content")
        kind, choices = check_interactive(
            content.get("interactive"),
            "content.interactive",
            flat_buttons=True,
            media_key="url",
            button_media=("image",),
        )
        return SendInfo(sender, recipient, kind, choices)

    def accepted(self, info: SendInfo, now: float) -> tuple[Answer, Sent]:
        message_id = uuid.uuid4().hex
        conversation_id = uuid.uuid5(_NAMESPACE, f"{info.sender}:{info.recipient}").hex
        sent = Sent(self.name, info, message_id, now, {"conversation_id": conversation_id})
        return Answer(202, {"id": message_id, "status": "accepted"}), sent

    def refusal(self, kind: RefusalKind, *, field: str | None = None, message: str | None = None) -> Answer:
        status, code, description, parameter = _REFUSALS[kind]
        if kind == "invalid" and message and message.startswith("is required"):
            code = 9  # Bird's "missing parameters"
        if kind == "invalid" and field:
            description = f"{field} {message}" if message else description
        elif message:
            description = message
        error = {"code": code, "description": description, "parameter": field or parameter}
        return Answer(status, {"errors": [error]})

    def status_event(self, sent: Sent, status: StatusKind, now: float) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": sent.message_id,
            "conversationId": sent.ids["conversation_id"],
            "platform": "whatsapp",
            "to": f"+{sent.info.recipient}",
            "from": sent.info.sender,
            "channelId": sent.info.sender,
            "type": "interactive",
            "direction": "sent",
            "status": status,
            "createdDatetime": iso_time(sent.time),
            "updatedDatetime": iso_time(now),
        }
        if status == "failed":
            event["error"] = {"code": 131026, "description": UNDELIVERABLE}
        return event

    def reply_event(self, sent: Sent, choice: Choice, now: float) -> dict[str, Any]:
        reply_type = "button_reply" if sent.info.kind == "button" else "list_reply"
        reply: dict[str, Any] = {"id": choice.id, "text": choice.title}
        if reply_type == "list_reply" and choice.description:
            reply["description"] = choice.description
        return {
            "id": uuid.uuid4().hex,
            "conversationId": sent.ids["conversation_id"],
            "platform": "whatsapp",
            "to": f"+{business_number(sent.info.sender)}",
            "from": f"+{sent.info.recipient}",
            "channelId": sent.info.sender,
            "type": "interactive",
            "content": {"interactive": {"type": reply_type, "reply": reply}},
            "replyTo": {"id": sent.message_id},
            "direction": "received",
            "status": "received",
            "createdDatetime": iso_time(now),
            "updatedDatetime": iso_time(now),
        }

    def signature_headers(self, raw: bytes, url: str, config: SimulatorConfig) -> dict[str, str]:
        jwt = bird_signature_jwt(config.bird_signing_key, url, raw, time.time())
        return {"MessageBird-Signature-JWT": jwt}
