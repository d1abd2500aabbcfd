"""WA.cr API v2: ``POST /messages/interactive`` with ``Authorization: Bearer <token>``.

A flat body (``phone``, ``type``, ``body_text``, ``buttons`` or ``list_button_text`` +
``sections``); the account is the sender ("default"). Answers (docs/providers.md): 200
``{"success": true, "data": {message_id, contact_id, phone, type, status: "sent", sent_at, chat_id,
chat_message_id}}``; refusals ``{"success": false, "error": {"code", "message"}}`` with WA.cr's
codes. Webhooks are not documented; assumed, unsigned: ``{"event": "message.status", "message_id",
"phone", "status", "timestamp", "error"}`` and ``{"event": "message.received", "message_id",
"phone", "type": "interactive", "interactive": {"type": "button_reply"|"list_reply", "id", "title"},
"reply_to", "timestamp"}``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from wadispatch.simulator.providers.base import (
    Answer,
    Choice,
    Dialect,
    InvalidRequest,
    RefusalKind,
    SendInfo,
    Sent,
    StatusKind,
    bearer,
    iso_time,
    new_wamid,
    require_object,
    require_string,
    stable_digits,
)
from wadispatch.simulator.providers.interactive import (
    MAX_BUTTONS,
    MAX_ROWS,
    MAX_SECTIONS,
    check_phone,
)

SENDER = "default"

_REFUSALS: dict[RefusalKind, tuple[int, str, str]] = {
    "rate_limited": (429, "RATE_LIMIT_EXCEEDED", "Too many requests"),
    "transient": (500, "INTERNAL_ERROR", "Unexpected server error"),
    "auth": (401, "UNAUTHORIZED", "Invalid or missing API token"),
    "window_closed": (
        500,
        "MESSAGE_SEND_FAILED",
        "Failed to send via WhatsApp API: (#131047) Re-engagement message: more than 24 hours "
        "have passed since the recipient last replied (24-hour window closed)",
    ),
    "opted_out": (403, "CONTACT_OPTED_OUT", "Contact has opted out of receiving messages"),
    "invalid": (422, "VALIDATION_ERROR", "Request validation failed"),
}

# WA.cr's own validation messages, where its page gives one.
_REQUIRED = {
    "phone": "Phone number is required",
    "type": "Interactive message type is required",
    "body_text": "Body text is required",
    "buttons": "Buttons are required for button type messages",
    "list_button_text": "List button text is required for list type messages",
    "sections": "Sections are required for list type messages",
}


def _required(data: Mapping[str, Any], key: str, max_length: int | None = None) -> str:
    if data.get(key) is None:
        raise InvalidRequest(key, _REQUIRED[key])
    value = require_string(data, key, key, max_length=max_length)
    assert value is not None
    return value


class WaCr(Dialect):
    """WA.cr's API v2."""

    name = "wacr"

    def __init__(self) -> None:
        self._chat_ids = itertools.count(1)

    def sender_hint(self, params: Mapping[str, str], body: Any) -> str:
        return SENDER

    def credentials(self, headers: Mapping[str, str]) -> tuple[str, ...]:
        return bearer(headers)

    def parse(self, params: Mapping[str, str], body: Any) -> SendInfo:
        data = require_object(body)
        if data.get("phone") is None:
            raise InvalidRequest("phone", _REQUIRED["phone"])
        recipient = check_phone(data["phone"], "phone")
        kind = data.get("type")
        if kind is None:
            raise InvalidRequest("type", _REQUIRED["type"])
        if kind not in ("button", "list"):
            raise InvalidRequest("type", "Type must be either button or list")
        _required(data, "body_text", 1024)
        require_string(data, "header_text", "header_text", max_length=60, required=False)
        require_string(data, "footer_text", "footer_text", max_length=60, required=False)
        if data.get("contact_id") is not None and not isinstance(data["contact_id"], int):
            raise InvalidRequest("contact_id", "must be an integer")
        choices = self._buttons(data) if kind == "button" else self._sections(data)
        return SendInfo(SENDER, recipient, kind, choices)

    @staticmethod
    def _buttons(data: Mapping[str, Any]) -> tuple[Choice, ...]:
        buttons = data.get("buttons")
        if not buttons:
            raise InvalidRequest("buttons", _REQUIRED["buttons"])
        if not isinstance(buttons, list):
            raise InvalidRequest("buttons", "The buttons must be an array")
        if len(buttons) > MAX_BUTTONS:
            raise InvalidRequest("buttons", f"The buttons may not have more than {MAX_BUTTONS} items")
        choices = []
        for index, raw in enumerate(buttons):
            button = require_object(raw, f"buttons.{index}")
            button_id = require_string(button, "id", f"buttons.{index}.id")
            title = require_string(button, "title", f"buttons.{index}.title", max_length=20)
            assert button_id is not None and title is not None
            choices.append(Choice(button_id, title))
        return tuple(choices)

    @staticmethod
    def _sections(data: Mapping[str, Any]) -> tuple[Choice, ...]:
        _required(data, "list_button_text", 20)
        sections = data.get("sections")
        if not sections:
            raise InvalidRequest("sections", _REQUIRED["sections"])
        if not isinstance(sections, list):
            raise InvalidRequest("sections", "The sections must be an array")
        if len(sections) > MAX_SECTIONS:
            raise InvalidRequest("sections", f"The sections may not have more than {MAX_SECTIONS} items")
        choices = []
        for s_index, raw in enumerate(sections):
            section = require_object(raw, f"sections.{s_index}")
            require_string(section, "title", f"sections.{s_index}.title")
            rows = section.get("rows")
            if not isinstance(rows, list) or not rows:
                raise InvalidRequest(f"sections.{s_index}.rows", "The rows field is required")
            for r_index, raw_row in enumerate(rows):
                where = f"sections.{s_index}.rows.{r_index}"
                row = require_object(raw_row, where)
                row_id = require_string(row, "id", f"{where}.id")
                title = require_string(row, "title", f"{where}.title", max_length=24)
                description = require_string(
                    row, "description", f"{where}.description", max_length=72, required=False
                )
                assert row_id is not None and title is not None
                choices.append(Choice(row_id, title, description))
        if len(choices) > MAX_ROWS:
            raise InvalidRequest("sections", f"The sections may not have more than {MAX_ROWS} rows")
        return tuple(choices)

    def accepted(self, info: SendInfo, now: float) -> tuple[Answer, Sent]:
        message_id = new_wamid()
        chat_id = next(self._chat_ids)
        data = {
            "message_id": message_id,
            "contact_id": int(stable_digits(f"contact:{info.recipient}", 6)),
            "phone": info.recipient,
            "type": info.kind,
            "status": "sent",
            "sent_at": iso_time(now),
            "chat_id": chat_id,
            "chat_message_id": chat_id,
        }
        return Answer(200, {"success": True, "data": data}), Sent(self.name, info, message_id, now)

    def refusal(self, kind: RefusalKind, *, field: str | None = None, message: str | None = None) -> Answer:
        status, code, text = _REFUSALS[kind]
        if kind == "invalid" and field and message and message[0].islower():
            text = f"The {field} {message}"
        elif message:
            text = message
        return Answer(status, {"success": False, "error": {"code": code, "message": text}})

    def status_event(self, sent: Sent, status: StatusKind, now: float) -> dict[str, Any]:
        error = None
        if status == "failed":
            error = {"code": "MESSAGE_SEND_FAILED", "message": "Message undeliverable"}
        return {
            "event": "message.status",
            "message_id": sent.message_id,
            "phone": f"+{sent.info.recipient}",
            "status": status,
            "timestamp": iso_time(now),
            "error": error,
        }

    def reply_event(self, sent: Sent, choice: Choice, now: float) -> dict[str, Any]:
        reply_type = "button_reply" if sent.info.kind == "button" else "list_reply"
        interactive: dict[str, Any] = {"type": reply_type, "id": choice.id, "title": choice.title}
        if reply_type == "list_reply" and choice.description:
            interactive["description"] = choice.description
        return {
            "event": "message.received",
            "message_id": new_wamid(),
            "phone": f"+{sent.info.recipient}",
            "type": "interactive",
            "interactive": interactive,
            "reply_to": sent.message_id,
            "timestamp": iso_time(now),
        }
