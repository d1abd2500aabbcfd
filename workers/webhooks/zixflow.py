"""Zixflow post-back notifications (the payload page is not in the stored docs: assumed). Pure.

``{"request_id", "post_back_data", "status", "phone_id", "recipient", "timestamp", "error"}``,
POSTed to the ``post_back_url`` of the send. wadispatch sends its own message id as
``post_back_data``, so a notification names our message directly (and Zixflow's ``request_id``,
which the ledger keeps as the provider message id, as a fallback). ``status`` is ``delivered``,
``read`` or ``failed``; a reply is ``"status": "replied"`` with ``"interactive": {"type":
"button_reply" | "list_reply", "<type>": {"id", "title"}}``, written at ``timestamp``; a
``recipient`` that is a business-scoped user id rather than a number names the writer by that id.
"""

from __future__ import annotations

from typing import Any

from wadispatch.webhooks.common import digest, instant, obj, phone, require_object, status_name, text, user_id
from wadispatch.webhooks.events import MessageRef, Reply, Status, Unknown, WebhookEvent

PROVIDER = "zixflow"
REPLY_TYPES = ("button_reply", "list_reply")


def parse(body: Any) -> list[WebhookEvent]:
    data = require_object(body)
    request_id = text(data.get("request_id"))
    ref = MessageRef(text(data.get("post_back_data")), (request_id,) if request_id else ())
    interactive = obj(data.get("interactive"))
    kind = interactive.get("type")
    if kind in REPLY_TYPES:
        choice = obj(interactive.get(kind))
        reply_id = text(choice.get("id")) or ""
        key = f"reply:{request_id}:{text(data.get('timestamp'))}:{reply_id}" if request_id else digest(data)
        sender = text(data.get("phone_id"))
        return [
            Reply(
                PROVIDER,
                key,
                sender,
                phone(data.get("recipient")),
                ref,
                reply_id,
                text(choice.get("title")),
                kind,
                user_id=user_id(data.get("recipient")),
                at=instant(data.get("timestamp")),
            )
        ]
    name = status_name(data.get("status"))
    if name is None or not ref:
        return [Unknown(PROVIDER, digest(data), f"status {text(data.get('status'))!r}")]
    error = obj(data.get("error"))
    key = f"status:{request_id or ref.message_id}:{name}"
    return [
        Status(
            PROVIDER,
            key,
            ref,
            name,
            error_code=text(error.get("code")),
            error_message=text(error.get("message")),
        )
    ]
