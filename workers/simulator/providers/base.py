"""The contract every simulated provider ("dialect") fulfils, and the values passed through it.

A dialect is pure translation, like the project's adapters seen from the other side: it reads a
request (headers, path parameters, parsed JSON body) into a :class:`SendInfo` or raises
:class:`InvalidRequest`; it renders each answer kind as an :class:`Answer` in the provider's own
shape; and it builds the provider's webhook bodies and signature headers. No I/O, no aiohttp.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from wadispatch.settings import ProviderName
from wadispatch.simulator.config import SimulatorConfig

RefusalKind = Literal["rate_limited", "transient", "auth", "window_closed", "opted_out", "invalid"]
AnswerKind = Literal[
    "accepted",
    "rate_limited",
    "transient",
    "auth",
    "window_closed",
    "opted_out",
    "invalid",
    "hang",
    "drop",
]
ANSWER_KINDS: tuple[AnswerKind, ...] = get_args(AnswerKind)
StatusKind = Literal["sent", "delivered", "read", "failed"]
UNDELIVERABLE = "Message undeliverable"


class InvalidRequest(Exception):
    """The request body breaks the provider's rules; ``field`` is a path such as ``to``."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Choice:
    """One button or list row the simulated user may pick."""

    id: str
    title: str
    description: str | None = None


@dataclass(slots=True)
class SendInfo:
    """What the simulator understood of a valid send request."""

    sender: str
    recipient: str | None
    """Digits without ``+``; None when Briq targets an unknown ``conversation_id``."""
    kind: str
    """``button``, ``list`` or ``template``."""
    choices: tuple[Choice, ...]
    post_back_data: str | None = None
    post_back_url: str | None = None
    conversation_id: str | None = None


@dataclass(slots=True)
class Answer:
    """An HTTP answer: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


@dataclass(slots=True)
class Sent:
    """An accepted message: what the log and the webhooks need to know about it."""

    provider: ProviderName
    info: SendInfo
    message_id: str
    time: float
    """Epoch seconds when it was accepted."""
    ids: dict[str, str] = field(default_factory=dict)
    """Provider-specific ids (Briq's conversation and WhatsApp ids, WA.cr's contact...)."""
    fails_for: str | None = None
    """Why its ``failed`` webhook says it failed: ``window_closed`` for an interactive message
    accepted for a closed window (``window_closed_by_webhook``); else undeliverable."""


class Dialect(ABC):
    """One provider's wire format: requests in, answers and webhook bodies out."""

    name: ClassVar[ProviderName]
    reports_sent: ClassVar[bool] = True
    """Whether its webhooks report ``sent`` before ``delivered`` (Zixflow's do not)."""

    @abstractmethod
    def sender_hint(self, params: Mapping[str, str], body: Any) -> str:
        """The sender to count a request under, even when the body is invalid."""

    @abstractmethod
    def credentials(self, headers: Mapping[str, str]) -> tuple[str, ...]:
        """Every credential value the request carries; empty when one is missing."""

    @abstractmethod
    def parse(self, params: Mapping[str, str], body: Any) -> SendInfo:
        """Check the body against the provider's rules; raise :class:`InvalidRequest`."""

    @abstractmethod
    def accepted(self, info: SendInfo, now: float) -> tuple[Answer, Sent]:
        """The documented success answer and the record of the accepted message."""

    @abstractmethod
    def refusal(self, kind: RefusalKind, *, field: str | None = None, message: str | None = None) -> Answer:
        """The provider's own answer for a refusal (``Retry-After`` is added by the caller)."""

    @abstractmethod
    def status_event(self, sent: Sent, status: StatusKind, now: float) -> dict[str, Any]:
        """The provider's webhook body for a status change of ``sent``."""

    @abstractmethod
    def reply_event(self, sent: Sent, choice: Choice, now: float) -> dict[str, Any]:
        """The provider's webhook body for the user picking ``choice`` in answer to ``sent``."""

    def signature_headers(self, raw: bytes, url: str, config: SimulatorConfig) -> dict[str, str]:
        """Headers that sign a webhook body; none by default (unsigned providers)."""
        return {}

    def pair_refusal(self) -> Answer:
        """The answer when one (sender, recipient) pair goes over its limit."""
        return self.refusal("rate_limited", message="Too many messages to this recipient")


def iso_time(epoch: float) -> str:
    """``2025-01-02T03:04:05.678Z``."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bearer(headers: Mapping[str, str], scheme: str = "Bearer") -> tuple[str, ...]:
    """The token of ``Authorization: <scheme> <token>``, or nothing."""
    value = headers.get("Authorization", "")
    prefix, _, token = value.partition(" ")
    token = token.strip()
    if prefix.lower() != scheme.lower() or not token:
        return ()
    return (token,)


def require_object(body: Any, path: str = "(body)") -> dict[str, Any]:
    """The body as a dict, or :class:`InvalidRequest`."""
    if not isinstance(body, dict):
        raise InvalidRequest(None if path == "(body)" else path, "must be a JSON object")
    return body


def require_string(
    data: Mapping[str, Any],
    key: str,
    path: str,
    *,
    max_length: int | None = None,
    required: bool = True,
) -> str | None:
    """``data[key]`` as a non-empty string within ``max_length``, or None when optional and absent."""
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidRequest(path, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(path, "must be a string")
    if not value.strip():
        raise InvalidRequest(path, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise InvalidRequest(path, f"must be at most {max_length} characters")
    return value


def new_wamid() -> str:
    """A fresh WhatsApp-style message id (``wamid.`` + base64)."""
    return "wamid." + base64.b64encode(os.urandom(30)).decode("ascii")


def stable_digits(text: str, count: int) -> str:
    """``count`` digits derived from ``text`` (the same on every run)."""
    number = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    return str(number).zfill(20)[-count:]


def business_number(sender: str) -> str:
    """A made-up display phone number for a sender, ``1555`` + 7 stable digits."""
    return "1555" + stable_digits(sender, 7)
