"""The canonical send request: WhatsApp's own interactive object plus where to send it.

``validate_send_request(data)`` is the one entry point producers, the CLI and the HTTP API share.
It parses the structure with pydantic, then checks every WhatsApp limit and the chosen provider's
capabilities, and raises :class:`MessageValidationError` listing *all* problems, each as
``<field path>: <rule>``, e.g. ``interactive.action.buttons[3]: at most 3 buttons``.

Pure code: no I/O.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from wadispatch.errors import FieldError, MessageValidationError
from wadispatch.recipients import BSUID_RULE, is_bsuid, looks_like_bsuid
from wadispatch.settings import PROVIDER_NAMES, ProviderName
from wadispatch.templates import FallbackTemplate

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_E164 = re.compile(r"^\+?[1-9][0-9]{6,17}$")
METADATA_MAX_BYTES = 8192
IDEMPOTENCY_KEY_MAX = 255


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A ``{"text": ...}`` object (body and footer)."""

    text: str


class Media(_Strict):
    """A header medium: a public ``link`` or an uploaded media ``id``."""

    link: str | None = None
    id: str | None = None
    filename: str | None = None


class Header(_Strict):
    """``{"type": "text", "text": ...}`` or ``{"type": "image", "image": {"link": ...}}`` etc."""

    type: Literal["text", "image", "video", "document"]
    text: str | None = None
    image: Media | None = None
    video: Media | None = None
    document: Media | None = None


class Reply(_Strict):
    id: str
    title: str


class Button(_Strict):
    """A reply button: ``{"type": "reply", "reply": {"id": ..., "title": ...}}``."""

    type: Literal["reply"] = "reply"
    reply: Reply


class Row(_Strict):
    id: str
    title: str
    description: str | None = None


class Section(_Strict):
    title: str | None = None
    rows: list[Row]


class Action(_Strict):
    """``buttons`` for a button message; ``button`` (the menu label) and ``sections`` for a list."""

    buttons: list[Button] | None = None
    button: str | None = None
    sections: list[Section] | None = None


class Interactive(_Strict):
    """WhatsApp's interactive object, restricted to reply buttons and lists."""

    type: Literal["button", "list"]
    header: Header | None = None
    body: Text
    footer: Text | None = None
    action: Action


class SendRequest(_Strict):
    """One interactive message to send through one provider.

    ``to`` is an E.164 phone number, normalised to ``+<digits>``, or a WhatsApp business-scoped
    user id (BSUID, e.g. ``US.13491208655302741918``), kept as given; only providers that document
    BSUIDs take one (see :mod:`wadispatch.capabilities`). Briq alone can target an existing
    ``conversation_id`` instead of ``to``.
    """

    provider: ProviderName
    sender: str | None = Field(default=None, min_length=1)
    to: str | None = Field(
        default=None,
        description="The recipient: an E.164 phone number (`+255712345678`; spaces, dashes, dots and "
        "brackets are removed) or a WhatsApp business-scoped user id, BSUID (`US.13491208655302741918`, "
        "or a parent BSUID `US.ENT.11815799212886844830`), for providers that document BSUIDs (Meta).",
        examples=["+255712345678", "US.13491208655302741918"],
    )
    conversation_id: UUID | None = None
    interactive: Interactive
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    fallback: FallbackTemplate | None = Field(
        default=None,
        description="An approved template sent instead when the recipient's 24-hour window is "
        "closed (Meta only); its quick-reply payloads are this message's reply ids.",
    )
    valid_for_seconds: int | None = Field(
        default=None,
        description="Fail the message `expired` if it is not sent within this many seconds of its "
        "acceptance (1 to 36,000). Give this or `expires_at`, not both.",
        examples=[600],
    )
    expires_at: datetime | None = Field(
        default=None,
        description="Fail the message `expired` if it is not sent by then: ISO 8601 with its UTC offset, "
        "in the future, at most 36,000 s away. Give this or `valid_for_seconds`, not both.",
        examples=["2026-05-01T18:00:00+02:00"],
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # No provider accepts U+0000 in a text, and PostgreSQL cannot store one in the ledger.
        if not _may_hold_nul(data):
            return data
        paths = [format_path(loc) for loc in _nul_locations(data, ())]
        if paths:
            errors = [FieldError(path, "must not contain the NUL character (U+0000)") for path in paths[:10]]
            raise PydanticCustomError(
                "wadispatch_rules", "{summary}", {"summary": "; ".join(map(str, errors)), "errors": errors}
            )
        return data

    @field_validator("sender", mode="before")
    @classmethod
    def _strip_sender(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("to", mode="before")
    @classmethod
    def _normalise_recipient(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            value = str(value)
        if not isinstance(value, str):
            raise PydanticCustomError("phone_type", "must be a string of digits")
        return normalise_recipient(value)

    @model_validator(mode="after")
    def _check_rules(self) -> SendRequest:
        from wadispatch.rules import request_rule_errors  # rules import these models

        errors = request_rule_errors(self)
        if errors:
            raise PydanticCustomError(
                "wadispatch_rules",
                "{summary}",
                {"summary": "; ".join(map(str, errors)), "errors": errors},
            )
        return self

    @property
    def to_is_bsuid(self) -> bool:
        """Whether ``to`` is a business-scoped user id rather than a phone number."""
        return is_bsuid(self.to)

    @property
    def reply_ids(self) -> list[str]:
        """The ids a reply to the interactive object can carry: its buttons' or its rows'."""
        action = self.interactive.action
        if action.buttons:
            return [button.reply.id for button in action.buttons]
        return [row.id for section in action.sections or () for row in section.rows]

    @property
    def recipient_digits(self) -> str | None:
        """A phone number ``to`` without its ``+``, as Zixflow and Meta want it (``None`` for a BSUID)."""
        return self.to[1:] if self.to and not self.to_is_bsuid else None


def _may_hold_nul(value: Any) -> bool:
    """Whether a request's raw data may hold a NUL character anywhere (keys included): the cheap
    check every request pays (one orjson pass, which writes a NUL as ``\u0000``; what orjson
    cannot write is walked); :func:`_nul_locations` then says where."""
    try:
        return b"\\u0000" in orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        pass
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            if any(isinstance(key, str) and "\x00" in key for key in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _nul_locations(value: Any, loc: tuple[int | str, ...]) -> list[tuple[int | str, ...]]:
    """Where NUL characters are in a request's raw data (keys included), without recursion."""
    found: list[tuple[int | str, ...]] = []
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                found.append(where)
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    found.append(where)
                stack.append((child, (*where, str(key))))
        elif isinstance(item, list | tuple):
            stack.extend((child, (*where, index)) for index, child in enumerate(item))
    return sorted(found, key=str)


def normalise_recipient(value: str) -> str:
    """A phone number as ``+<digits>``, or a BSUID as given (less surrounding spaces); else a rule error."""
    if looks_like_bsuid(value):
        bsuid = value.strip()
        if not is_bsuid(bsuid):
            raise PydanticCustomError("bsuid", BSUID_RULE)
        return bsuid
    return normalise_phone(value)


def normalise_phone(value: str) -> str:
    """Strip spaces, dashes, dots and brackets; return ``+<digits>`` or raise a rule error."""
    compact = _PHONE_SEPARATORS.sub("", value)
    if not _E164.fullmatch(compact):
        raise PydanticCustomError(
            "phone_e164",
            "must be an E.164 phone number: 7 to 18 digits, optional leading +, no leading 0",
        )
    return "+" + compact.lstrip("+")


def validate_send_request(data: Any) -> SendRequest:
    """Parse and check a send request; raise :class:`MessageValidationError` with every problem."""
    if isinstance(data, SendRequest):
        return data
    try:
        return SendRequest.model_validate(data)
    except ValidationError as exc:
        raise MessageValidationError(field_errors(exc)) from None


def field_errors(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as field errors: each path as the validator names it, each rule in
    words (``interactive.body.text: required``)."""
    errors: list[FieldError] = []
    for detail in exc.errors(include_url=False):
        if detail["type"] == "wadispatch_rules":
            errors.extend(detail["ctx"]["errors"])
        else:
            errors.append(FieldError(format_path(detail["loc"]), _rule_text(detail)))
    return errors


def format_path(loc: tuple[int | str, ...]) -> str:
    """``("interactive", "action", "buttons", 3)`` → ``interactive.action.buttons[3]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(request)"


_RULE_TEXT = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
}


def _rule_text(detail: ErrorDetails) -> str:
    kind = detail["type"]
    if kind in _RULE_TEXT:
        return _RULE_TEXT[kind]
    if kind == "literal_error":
        return f"must be one of {detail.get('ctx', {}).get('expected', '')}".replace("'", "")
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"at most {detail['ctx']['max_length']} characters"
    message = detail["msg"]
    return message[0].lower() + message[1:] if message else kind


def metadata_size(metadata: dict[str, Any]) -> int:
    """Bytes of the metadata as stored (compact JSON, UTF-8)."""
    if not metadata:
        return 2  # "{}"
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


__all__ = [
    "PROVIDER_NAMES",
    "Action",
    "Button",
    "Header",
    "Interactive",
    "Media",
    "Reply",
    "Row",
    "Section",
    "SendRequest",
    "Text",
    "normalise_phone",
    "normalise_recipient",
    "validate_send_request",
]
