"""Meta WhatsApp Cloud API notifications: ``entry[].changes[].value`` with ``messages[]`` (inbound,
replies with ``context.id``) and ``statuses[]`` (sent, delivered, read, failed). Pure."""

from __future__ import annotations

from typing import Any

from wadispatch.webhooks.common import digest, kind_of, obj, phone, require_object, status_name, text
from wadispatch.webhooks.events import Inbound, MessageRef, Reply, Status, Unknown, WebhookEvent

PROVIDER = "meta"
REPLY_TYPES = ("button_reply", "list_reply")


def parse(body: Any) -> list[WebhookEvent]:
    data = require_object(body)
    if data.get("object") != "whatsapp_business_account":
        return [Unknown(PROVIDER, digest(data), f"object {text(data.get('object'))!r}")]
    events: list[WebhookEvent] = []
    for entry in _items(data.get("entry")):
        for change in _items(obj(entry).get("changes")):
            events.extend(_change(obj(change)))
    return events or [Unknown(PROVIDER, digest(data), "a notification without changes")]


def _change(change: dict[str, Any]) -> list[WebhookEvent]:
    value = obj(change.get("value"))
    if change.get("field") != "messages":
        return [Unknown(PROVIDER, digest(change), f"field {text(change.get('field'))!r}")]
    sender = text(obj(value.get("metadata")).get("phone_number_id"))
    events: list[WebhookEvent] = [_message(sender, obj(item)) for item in _items(value.get("messages"))]
    events += [_status(obj(item)) for item in _items(value.get("statuses"))]
    return events or [Unknown(PROVIDER, digest(change), f"messages change with {kind_of(value)}")]


def _message(sender: str | None, message: dict[str, Any]) -> WebhookEvent:
    key = text(message.get("id")) or digest(message)
    source = phone(message.get("from"))
    answered = text(obj(message.get("context")).get("id"))
    answers = MessageRef(provider_message_ids=(answered,) if answered else ())
    interactive = obj(message.get("interactive"))
    kind = interactive.get("type")
    if message.get("type") == "interactive" and kind in REPLY_TYPES:
        choice = obj(interactive.get(kind))
        return Reply(
            PROVIDER,
            key,
            sender,
            source,
            answers,
            text(choice.get("id")) or "",
            text(choice.get("title")),
            kind,
        )
    if message.get("type") == "button":  # a template's quick-reply button
        button = obj(message.get("button"))
        reply_id = text(button.get("payload")) or text(button.get("text")) or ""
        return Reply(PROVIDER, key, sender, source, answers, reply_id, text(button.get("text")))
    return Inbound(PROVIDER, key, sender, source)


def _status(status: dict[str, Any]) -> WebhookEvent:
    message_id = text(status.get("id"))
    name = status_name(status.get("status"))
    if message_id is None or name is None:
        return Unknown(PROVIDER, digest(status), f"status {text(status.get('status'))!r}")
    errors = status.get("errors")
    error = obj(errors[0]) if isinstance(errors, list) and errors else {}
    return Status(
        PROVIDER,
        f"status:{message_id}:{name}",
        MessageRef(provider_message_ids=(message_id,)),
        name,
        error_code=text(error.get("code")),
        error_message=text(error.get("message")) or text(error.get("title")),
    )


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
