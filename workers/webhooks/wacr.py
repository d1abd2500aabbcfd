"""WA.cr webhooks (WA.cr documents none: this shape is assumed, as the simulator sends it). Pure.

``{"event": "message.received", "message_id", "phone", "type", "interactive": {"type":
"button_reply" | "list_reply", "id", "title"}, "reply_to": <the answered message id>}`` and
``{"event": "message.status", "message_id", "phone", "status", "error": {"code", "message"}}``.
WA.cr sends from the account: there is no sender handle. A received message was written at
``timestamp``; a ``phone`` that is a business-scoped user id names the writer by that id.
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

PROVIDER = "wacr"
REPLY_TYPES = ("button_reply", "list_reply")


def parse(body: Any) -> list[WebhookEvent]:
    data = require_object(body)
    event = text(data.get("event"))
    message_id = text(data.get("message_id"))
    if event == "message.received":
        key = message_id or digest(data)
        interactive = obj(data.get("interactive"))
        kind = interactive.get("type")
        source = phone(data.get("phone"))
        source_id, at = user_id(data.get("phone")), instant(data.get("timestamp"))
        if kind in REPLY_TYPES:
            answered = text(data.get("reply_to"))
            ref = MessageRef(provider_message_ids=(answered,) if answered else ())
            reply_id = text(interactive.get("id")) or ""
            title = text(interactive.get("title"))
            return [Reply(PROVIDER, key, None, source, ref, reply_id, title, kind, user_id=source_id, at=at)]
        typed = message_text(data.get("text"))
        return [Inbound(PROVIDER, key, None, source, user_id=source_id, at=at, text=typed)]
    name = status_name(data.get("status"))
    if event == "message.status" and name is not None and message_id is not None:
        error = obj(data.get("error"))
        ref = MessageRef(provider_message_ids=(message_id,))
        return [
            Status(
                PROVIDER,
                f"status:{message_id}:{name}",
                ref,
                name,
                error_code=text(error.get("code")),
                error_message=text(error.get("message")),
            )
        ]
    return [Unknown(PROVIDER, digest(data), f"event {event!r}")]
