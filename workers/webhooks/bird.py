"""Bird (MessageBird) Conversations API webhooks. Pure.

A received message (``direction: "received"``) of type ``interactive`` whose
``content.interactive.type`` is ``button_reply`` or ``list_reply`` answers the message
``replyTo.id`` (provider-docs 002); other received messages are inbound. A sent message
(``direction: "sent"``) with a ``status`` is a status update (assumed: Bird's docs here show only
replies). The message resource may come bare, as in the docs, or wrapped as
``{"type": "message.created" | "message.updated", "message": {...}}`` as Bird's webhook
subscriptions send it.

The writer is ``from`` (a phone number); when WhatsApp withholds it (users with a username, from
mid-2026) Bird names them by their business-scoped user id in
``meta.extraInformation.whatsappbsuid`` (Bird's BSUID page; assumed to apply here too). The
message was written at ``createdDatetime``.
"""

from __future__ import annotations

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

PROVIDER = "bird"
REPLY_TYPES = ("button_reply", "list_reply")


def parse(body: Any) -> list[WebhookEvent]:
    data = require_object(body)
    message = obj(data.get("message")) if isinstance(data.get("message"), dict) else data
    key = text(message.get("id"))
    direction = message.get("direction")
    if key is None:
        return [
            Unknown(PROVIDER, digest(data), f"a body without a message id (type {text(data.get('type'))!r})")
        ]
    if direction == "received":
        return [_received(key, message)]
    name = status_name(message.get("status"))
    if direction == "sent" and name is not None:
        error = obj(message.get("error"))
        status = Status(
            PROVIDER,
            f"status:{key}:{name}",
            MessageRef(provider_message_ids=(key,)),
            name,
            error_code=text(error.get("code")),
            error_message=text(error.get("description")) or text(error.get("message")),
        )
        return [status]
    return [
        Unknown(
            PROVIDER, digest(data), f"direction {text(direction)!r}, status {text(message.get('status'))!r}"
        )
    ]


def _received(key: str, message: dict[str, Any]) -> Inbound:
    sender = text(message.get("channelId"))
    source = phone(message.get("from"))
    extra = obj(obj(message.get("meta")).get("extraInformation"))
    source_id = user_id(extra.get("whatsappbsuid")) or user_id(message.get("from"))
    at = instant(message.get("createdDatetime"))
    interactive = obj(obj(message.get("content")).get("interactive"))
    kind = interactive.get("type")
    if message.get("type") == "interactive" and kind in REPLY_TYPES:
        choice = obj(interactive.get("reply")) or obj(interactive.get(kind))
        answered = text(obj(message.get("replyTo")).get("id"))
        return Reply(
            PROVIDER,
            key,
            sender,
            source,
            MessageRef(provider_message_ids=(answered,) if answered else ()),
            text(choice.get("id")) or "",
            text(choice.get("text")) or text(choice.get("title")),
            kind,
            user_id=source_id,
            at=at,
        )
    typed = message_text(obj(message.get("content")).get("text"))
    return Inbound(PROVIDER, key, sender, source, user_id=source_id, at=at, text=typed)
