"""Briq "Karibu" webhooks (assumed; Briq's stored docs only say a choice "arrives as an inbound
message ... via a webhook"). Pure.

``{"event_id", "event", "created_at", "data"}``: ``whatsapp.inbound`` is an inbound message, a reply
when ``data.interactive`` holds a ``button_reply`` / ``list_reply`` and ``data.context`` names the
message answered (Briq's ``message_id`` and the WhatsApp id); ``whatsapp.sent`` / ``.delivered`` /
``.read`` / ``.failed`` are statuses of the message ``data.message_id``. An inbound message was
written at ``created_at``. A ``data.from`` that is a business-scoped user id rather than a number
(WhatsApp may withhold numbers from mid-2026) names the writer by that id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wadispatch.webhooks.common import (
    digest,
    instant,
    message_text,
    obj,
    phone,
    require_object,
    status_name,
    text,
    user_id,
)
from wadispatch.webhooks.events import Inbound, MessageRef, Reply, Status, Unknown, WebhookEvent

PROVIDER = "briq"
REPLY_TYPES = ("button_reply", "list_reply")


def parse(body: Any) -> list[WebhookEvent]:
    envelope = require_object(body)
    data = obj(envelope.get("data"))
    event = text(envelope.get("event")) or ""
    key = text(envelope.get("event_id")) or digest(envelope)
    if event == "whatsapp.inbound":
        return [_inbound(key, data, instant(envelope.get("created_at")))]
    name = status_name(event.removeprefix("whatsapp.")) if event.startswith("whatsapp.") else None
    ids = tuple(
        value for value in (text(data.get("message_id")), text(data.get("provider_message_id"))) if value
    )
    if name is None or not ids:
        return [Unknown(PROVIDER, key, f"event {event!r}")]
    error = obj(data.get("error"))
    return [
        Status(
            PROVIDER,
            key,
            MessageRef(provider_message_ids=ids),
            name,
            error_code=text(error.get("code")),
            error_message=text(error.get("message")),
        )
    ]


def _inbound(key: str, data: dict[str, Any], at: datetime | None) -> Inbound:
    sender = text(data.get("sender"))
    source = phone(data.get("from"))
    source_id = user_id(data.get("from"))
    interactive = obj(data.get("interactive"))
    kind = interactive.get("type")
    if kind in REPLY_TYPES:
        choice = obj(interactive.get(kind))
        context = obj(data.get("context"))
        ids = tuple(
            value
            for value in (text(context.get("message_id")), text(context.get("provider_message_id")))
            if value
        )
        return Reply(
            PROVIDER,
            key,
            sender,
            source,
            MessageRef(provider_message_ids=ids),
            text(choice.get("id")) or "",
            text(choice.get("title")),
            kind,
            user_id=source_id,
            at=at,
        )
    typed = message_text(data.get("text"))
    return Inbound(PROVIDER, key, sender, source, user_id=source_id, at=at, text=typed)
