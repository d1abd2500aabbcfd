"""Meta WhatsApp Cloud API notifications: ``entry[].changes[].value`` with ``messages[]`` (inbound,
replies with ``context.id``, system messages) and ``statuses[]`` (sent, delivered, read, failed).
Pure.

Users are named by ``from`` / ``wa_id`` / ``recipient_id`` (a phone number) and, since April 2026,
by a business-scoped user id: ``contacts[].user_id``, ``messages[].from_user_id``,
``statuses[].recipient_user_id``. A user with a username may come with no phone number at all.
"""

from __future__ import annotations

from typing import Any

from wadispatch.webhooks.common import (
    digest,
    instant,
    kind_of,
    message_text,
    obj,
    phone,
    require_object,
    status_name,
    text,
    user_id,
)
from wadispatch.webhooks.events import (
    Inbound,
    MessageRef,
    Reply,
    Status,
    SystemMessage,
    Unknown,
    WebhookEvent,
)

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
    contacts = [obj(item) for item in _items(value.get("contacts"))]
    events: list[WebhookEvent] = [
        _message(sender, obj(item), contacts) for item in _items(value.get("messages"))
    ]
    events += [_status(obj(item), contacts) for item in _items(value.get("statuses"))]
    return events or [Unknown(PROVIDER, digest(change), f"messages change with {kind_of(value)}")]


def _message(sender: str | None, message: dict[str, Any], contacts: list[dict[str, Any]]) -> WebhookEvent:
    key = text(message.get("id")) or digest(message)
    at = instant(message.get("timestamp"))
    source = phone(message.get("from"))
    source_id = user_id(message.get("from_user_id")) or user_id(message.get("from"))
    contact = _contact(contacts, source, source_id)
    source = source or phone(contact.get("wa_id"))
    source_id = source_id or user_id(contact.get("user_id"))
    if message.get("type") == "system":
        system = obj(message.get("system"))
        return SystemMessage(
            PROVIDER,
            key,
            sender,
            text(system.get("type")) or "unknown",
            # before Graph API v12: ``customer`` (the old number) and ``new_wa_id``
            phone=source or phone(system.get("customer")),
            user_id=source_id,
            new_phone=phone(system.get("wa_id")) or phone(system.get("new_wa_id")),
            new_user_id=user_id(system.get("user_id")),
            at=at,
        )
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
            user_id=source_id,
            at=at,
        )
    if message.get("type") == "button":  # a template's quick-reply button
        button = obj(message.get("button"))
        reply_id = text(button.get("payload")) or text(button.get("text")) or ""
        return Reply(
            PROVIDER,
            key,
            sender,
            source,
            answers,
            reply_id,
            text(button.get("text")),
            user_id=source_id,
            at=at,
        )
    typed = message_text(message.get("text")) if message.get("type") == "text" else None
    return Inbound(PROVIDER, key, sender, source, user_id=source_id, at=at, text=typed)


def _status(status: dict[str, Any], contacts: list[dict[str, Any]]) -> WebhookEvent:
    message_id = text(status.get("id"))
    name = status_name(status.get("status"))
    if message_id is None or name is None:
        return Unknown(PROVIDER, digest(status), f"status {text(status.get('status'))!r}")
    # ``recipient_id`` is the number sent to, or the user id when the message went to one.
    recipient = phone(status.get("recipient_id"))
    recipient_id = user_id(status.get("recipient_user_id")) or user_id(status.get("recipient_id"))
    # a group's status names no user: only a contact matching the recipient tells more
    contact = _contact(contacts, recipient, recipient_id) if recipient or recipient_id else {}
    errors = status.get("errors")
    error = obj(errors[0]) if isinstance(errors, list) and errors else {}
    return Status(
        PROVIDER,
        f"status:{message_id}:{name}",
        MessageRef(provider_message_ids=(message_id,)),
        name,
        error_code=text(error.get("code")),
        error_message=_error_message(error),
        phone=recipient or phone(contact.get("wa_id")),
        user_id=recipient_id or user_id(contact.get("user_id")),
    )


def _error_message(error: dict[str, Any]) -> str | None:
    """What a Meta error says: ``error_data.details`` first (Meta asks to rely on it, titles are
    being deprecated), then ``message``, then ``title`` — as the send adapter reads an error."""
    details = obj(error.get("error_data")).get("details")
    return text(details) or text(error.get("message")) or text(error.get("title"))


def _contact(contacts: list[dict[str, Any]], number: str | None, bsuid: str | None) -> dict[str, Any]:
    """The ``contacts[]`` entry for this user: the one whose number or user id matches, or the
    only one when the message names neither."""
    for contact in contacts:
        if (number and phone(contact.get("wa_id")) == number) or (
            bsuid and user_id(contact.get("user_id")) == bsuid
        ):
            return contact
    if len(contacts) == 1 and not number and not bsuid:
        return contacts[0]
    return {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
