"""Checks of a WhatsApp interactive object (reply buttons or a list), as the providers apply them.

Hand-written dict checks rather than pydantic models: they run on every simulated request, and they
are deliberately independent of the project's own validator so that an adapter bug shows up here.
The first broken rule raises :class:`InvalidRequest` naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from wadispatch.simulator.providers.base import Choice, InvalidRequest, require_object, require_string

E164 = re.compile(r"\+?[1-9]\d{6,17}")
DIGITS = re.compile(r"[1-9]\d{6,17}")
MAX_BUTTONS = 3
MAX_SECTIONS = 10
MAX_ROWS = 10
ALL_MEDIA = ("image", "video", "document")


def check_phone(value: Any, path: str, *, plus: bool = True) -> str:
    """An E.164 number (``+`` optional when ``plus``, refused otherwise); return its digits."""
    if value is None:
        raise InvalidRequest(path, "is required")
    if not isinstance(value, str):
        raise InvalidRequest(path, "must be a string")
    if not (E164 if plus else DIGITS).fullmatch(value):
        form = "E.164 digits with an optional leading +" if plus else "digits only, without +"
        raise InvalidRequest(path, f"must be a phone number: {form}")
    return value.removeprefix("+")


def check_interactive(
    value: Any,
    path: str = "interactive",
    *,
    flat_buttons: bool = False,
    media_key: str = "link",
    button_media: tuple[str, ...] = ALL_MEDIA,
) -> tuple[str, tuple[Choice, ...]]:
    """Check a WhatsApp interactive object; return its type and the choices it offers.

    ``flat_buttons``: Bird's ``{"id", "type": "reply", "title"}`` instead of WhatsApp's
    ``{"type": "reply", "reply": {"id", "title"}}``. ``media_key``: the key of a header medium's
    address (Bird: ``url``; WhatsApp: ``link``, or an uploaded media ``id``).
    """
    interactive = require_object(value, path)
    kind = interactive.get("type")
    if kind is None:
        raise InvalidRequest(f"{path}.type", "is required")
    if kind not in ("button", "list"):
        raise InvalidRequest(f"{path}.type", "must be button or list")
    body = require_object(interactive.get("body"), f"{path}.body")
    require_string(body, "text", f"{path}.body.text", max_length=1024)
    if interactive.get("footer") is not None:
        footer = require_object(interactive["footer"], f"{path}.footer")
        require_string(footer, "text", f"{path}.footer.text", max_length=60)
    if interactive.get("header") is not None:
        media = button_media if kind == "button" else ()
        _check_header(interactive["header"], f"{path}.header", media, media_key)
    action = require_object(interactive.get("action"), f"{path}.action")
    if kind == "button":
        return kind, _check_buttons(action, f"{path}.action", flat_buttons)
    return kind, _check_list(action, f"{path}.action")


def _check_header(value: Any, path: str, media: tuple[str, ...], media_key: str) -> None:
    header = require_object(value, path)
    kind = header.get("type")
    if kind == "text":
        require_string(header, "text", f"{path}.text", max_length=60)
        return
    if kind not in media:
        allowed = ", ".join(("text", *media))
        raise InvalidRequest(f"{path}.type", f"must be one of: {allowed}")
    medium = require_object(header.get(kind), f"{path}.{kind}")
    if not any(isinstance(medium.get(key), str) and medium[key] for key in (media_key, "id")):
        raise InvalidRequest(f"{path}.{kind}.{media_key}", "is required")


def _check_buttons(action: dict[str, Any], path: str, flat: bool) -> tuple[Choice, ...]:
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        raise InvalidRequest(f"{path}.buttons", "must be a non-empty list")
    if len(buttons) > MAX_BUTTONS:
        raise InvalidRequest(f"{path}.buttons", f"at most {MAX_BUTTONS} buttons")
    choices: list[Choice] = []
    for index, raw in enumerate(buttons):
        where = f"{path}.buttons[{index}]"
        button = require_object(raw, where)
        if button.get("type") != "reply":
            raise InvalidRequest(f"{where}.type", "must be reply")
        reply, inner = (button, where) if flat else (button.get("reply"), f"{where}.reply")
        reply = require_object(reply, inner)
        button_id = require_string(reply, "id", f"{inner}.id", max_length=256)
        title = require_string(reply, "title", f"{inner}.title", max_length=20)
        assert button_id is not None and title is not None
        if any(choice.id == button_id for choice in choices):
            raise InvalidRequest(f"{inner}.id", "must be unique")
        if any(choice.title == title for choice in choices):
            raise InvalidRequest(f"{inner}.title", "must be unique")
        choices.append(Choice(button_id, title))
    return tuple(choices)


def _check_list(action: dict[str, Any], path: str) -> tuple[Choice, ...]:
    require_string(action, "button", f"{path}.button", max_length=20)
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        raise InvalidRequest(f"{path}.sections", "must be a non-empty list")
    if len(sections) > MAX_SECTIONS:
        raise InvalidRequest(f"{path}.sections", f"at most {MAX_SECTIONS} sections")
    choices: list[Choice] = []
    for s_index, raw_section in enumerate(sections):
        where = f"{path}.sections[{s_index}]"
        section = require_object(raw_section, where)
        require_string(section, "title", f"{where}.title", max_length=24, required=len(sections) > 1)
        rows = section.get("rows")
        if not isinstance(rows, list) or not rows:
            raise InvalidRequest(f"{where}.rows", "must be a non-empty list")
        for r_index, raw_row in enumerate(rows):
            row_path = f"{where}.rows[{r_index}]"
            choices.append(_check_row(raw_row, row_path, choices))
    if len(choices) > MAX_ROWS:
        raise InvalidRequest(f"{path}.sections", f"at most {MAX_ROWS} rows in all")
    return tuple(choices)


def _check_row(value: Any, path: str, seen: list[Choice]) -> Choice:
    row = require_object(value, path)
    row_id = require_string(row, "id", f"{path}.id", max_length=200)
    title = require_string(row, "title", f"{path}.title", max_length=24)
    description = require_string(row, "description", f"{path}.description", max_length=72, required=False)
    assert row_id is not None and title is not None
    if any(choice.id == row_id for choice in seen):
        raise InvalidRequest(f"{path}.id", "must be unique")
    return Choice(row_id, title, description)
