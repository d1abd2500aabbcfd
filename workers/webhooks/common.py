"""Helpers the provider parsers share. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from wadispatch.errors import MalformedWebhook
from wadispatch.webhooks.events import STATUS_NAMES, StatusName


def load_json(raw: bytes) -> Any:
    """The body as JSON, or :class:`MalformedWebhook` naming where it broke."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise MalformedWebhook("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MalformedWebhook(
            f"the body is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


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


def phone(value: Any) -> str | None:
    """A phone number as ``+<digits>`` (providers send ``255712345678`` or ``+255712345678``)."""
    raw = text(value)
    if raw is None:
        return None
    digits = "".join(ch for ch in raw if ch.isdigit())
    return f"+{digits}" if digits else None


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
