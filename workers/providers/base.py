"""The contract every provider adapter keeps, and the outcome types it returns.

An adapter is two pure functions and holds no state:

* ``build_request(request, settings, message_id)`` → :class:`ProviderRequest` (method, URL, headers,
  JSON body exactly as the provider documents it);
* ``classify(answer)`` → :class:`Outcome` (accepted / rate_limited / transient / permanent).

The HTTP call itself lives in :mod:`wadispatch.transport`. See ``docs/providers.md`` for every
provider's shapes and the assumptions made where its documentation is silent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any, Literal, Protocol

from wadispatch import jsoncodec
from wadispatch.messages import SendRequest
from wadispatch.settings import ProviderName, Settings

OutcomeKind = Literal["accepted", "rate_limited", "transient", "permanent"]
PermanentReason = Literal[
    "invalid",
    "auth",
    "opted_out",
    "window_closed",
    "recipient_limited",
    "recipient_unsupported",
    "provider_rejected",
    "config",
    "unknown_outcome",
]
"""Why a message failed for good. ``recipient_limited``: the person reached WhatsApp's per-user
marketing message limit for now (Meta's 131049; Meta asks to wait at least 24 hours, and sends
inside that time can block the user for a day), so it is never retried. ``recipient_unsupported``:
the provider does not take this kind of recipient for this message (Meta's 131062: no BSUID)."""


#: Meta's per-user marketing limit (131049) in the text of a provider that passes Meta's errors on.
RECIPIENT_LIMITED_TEXT = re.compile(r"\b131049\b|healthy ecosystem engagement", re.IGNORECASE)


@dataclass(frozen=True)
class ProviderRequest:
    """One HTTP request to a provider. Headers carry secrets: they are masked in ``repr``."""

    method: str
    url: str
    json: dict[str, Any]
    headers: Mapping[str, str] = field(repr=False)

    @cached_property
    def body(self) -> bytes:
        """``json`` encoded as UTF-8 JSON, as httpx encodes ``json=``."""
        return jsoncodec.dumps_bytes(self.json)


@dataclass(frozen=True)
class ProviderAnswer:
    """The parts of an HTTP answer an adapter reads. Header names are lower-case."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is empty or not JSON."""
        try:
            return jsoncodec.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Outcome:
    """What one send attempt came to."""

    kind: OutcomeKind
    provider_message_id: str | None = None
    retry_after: float | None = None
    reason: str | None = None
    status_code: int | None = None
    provider_code: str | None = None
    provider_message: str | None = None

    @classmethod
    def accepted(cls, provider_message_id: str, status_code: int) -> Outcome:
        return cls("accepted", provider_message_id=provider_message_id, status_code=status_code)

    @classmethod
    def rate_limited(
        cls,
        retry_after: float | None,
        *,
        status_code: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> Outcome:
        return cls(
            "rate_limited",
            retry_after=retry_after,
            reason="rate_limited",
            status_code=status_code,
            provider_code=code,
            provider_message=message,
        )

    @classmethod
    def transient(
        cls,
        reason: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> Outcome:
        return cls(
            "transient",
            reason=reason,
            status_code=status_code,
            provider_code=code,
            provider_message=message,
        )

    @classmethod
    def permanent(
        cls,
        reason: PermanentReason,
        *,
        status_code: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> Outcome:
        return cls(
            "permanent",
            reason=reason,
            status_code=status_code,
            provider_code=code,
            provider_message=message,
        )

    @classmethod
    def accepted_without_id(cls, status_code: int, field: str) -> Outcome:
        """A 2xx that names no message: it may have been sent, so it is neither retried nor
        counted as sent."""
        return cls.permanent(
            "unknown_outcome", status_code=status_code, message=f"2xx answer without {field}"
        )

    @property
    def retryable(self) -> bool:
        return self.kind in ("rate_limited", "transient")


class ProviderAdapter(Protocol):
    """A provider's translation: build its request, read its answer. No I/O."""

    name: ProviderName

    def build_request(self, request: SendRequest, settings: Settings, message_id: str) -> ProviderRequest: ...

    def classify(self, answer: ProviderAnswer) -> Outcome: ...


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def status_outcome(answer: ProviderAnswer, code: str | None, message: str | None) -> Outcome:
    """The outcome an HTTP status implies when the provider's own code says nothing more."""
    status = answer.status_code
    if status == 429:
        wait = parse_retry_after(answer.headers.get("retry-after"), answer.received_at)
        return Outcome.rate_limited(wait, status_code=status, code=code, message=message)
    if status >= 500:
        return Outcome.transient("server_error", status_code=status, code=code, message=message)
    if status in (401, 403):
        return Outcome.permanent("auth", status_code=status, code=code, message=message)
    if status in (400, 422):
        return Outcome.permanent("invalid", status_code=status, code=code, message=message)
    return Outcome.permanent("provider_rejected", status_code=status, code=code, message=message)


def interactive_json(request: SendRequest) -> dict[str, Any]:
    """The WhatsApp interactive object as JSON, without the fields left unset."""
    return request.interactive.model_dump(mode="json", exclude_none=True)


def join_url(base: str, path: str) -> str:
    """``base`` + ``path`` with exactly one slash between them."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def text_or_none(value: Any) -> str | None:
    """A provider's code or message as text (codes come as numbers or strings)."""
    return None if value is None else str(value)
