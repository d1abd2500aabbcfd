"""Helpers the provider parsers share. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from wadispatch import jsonread
from wadispatch.errors import MalformedWebhook
from wadispatch.recipients import is_bsuid
from wadispatch.webhooks.events import STATUS_NAMES, StatusName


def load_json(raw: bytes) -> Any:
    """The body as JSON within :mod:`wadispatch.jsonread`'s limits, or :class:`MalformedWebhook`
    naming where and why it was refused."""
    try:
        return jsonread.loads(raw)
    except jsonread.JsonInputError as exc:
        raise MalformedWebhook(exc.describe("the body")) from None


def require_object(data: Any, what: str = "the body") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedWebhook(f"{what} must be a JSON object")
    return data


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one (optional parts of a body)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """A scalar as text; ``None`` for missing, empty or structured values."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    result = str(value).strip()
    return result or None


#: Unix times above this are milliseconds (as seconds it would be the year 5138).
_MILLISECONDS_FROM = 100_000_000_000


def phone(value: Any) -> str | None:
    """A phone number as ``+<digits>`` (providers send ``255712345678`` or ``+255712345678``).

    ``None`` for a value with letters in it: a business-scoped user id is not a number, and its
    digits alone would name someone else's phone.
    """
    raw = text(value)
    if raw is None or any(ch.isalpha() for ch in raw):
        return None
    digits = "".join(ch for ch in raw if ch.isdigit())
    return f"+{digits}" if digits else None


def user_id(value: Any) -> str | None:
    """A WhatsApp business-scoped user id (BSUID, or a parent BSUID) as the provider gave it (see
    :mod:`wadispatch.recipients`), else ``None``."""
    raw = text(value)
    return raw if is_bsuid(raw) else None


def instant(value: Any) -> datetime | None:
    """When something happened, as an aware UTC datetime: Unix seconds (or milliseconds), as a
    number or a string, or ISO 8601 (a time without a zone is taken as UTC). ``None`` when missing
    or unreadable."""
    raw = text(value)
    if raw is None:
        return None
    try:
        number = float(raw)
    except ValueError:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if number != number or number <= 0:  # NaN, or no time at all
        return None
    seconds = number / 1000 if number >= _MILLISECONDS_FROM else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def status_name(value: Any) -> StatusName | None:
    name = (text(value) or "").lower()
    return name if name in STATUS_NAMES else None  # type: ignore[return-value]


def digest(data: Any) -> str:
    """A stable key for a body part that carries no id of its own."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def kind_of(value: Any) -> str:
    """A short, phone-free description of an unexpected value, for logs."""
    if isinstance(value, dict):
        return "object with " + ", ".join(sorted(str(key) for key in value)[:8])
    return type(value).__name__


def message_text(value: Any) -> str | None:
    """The typed text of an inbound message's ``text`` field: a string, or WhatsApp's
    ``{"body": ...}`` (some providers write ``{"text": ...}``)."""
    if isinstance(value, str):
        return value
    body = obj(value)
    return text(body.get("body")) or text(body.get("text"))
