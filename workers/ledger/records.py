"""What the ledger hands back and takes in: records of its rows and the changes a batch makes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wadispatch.messages import SendRequest
from wadispatch.states import State


def utcnow() -> datetime:
    """Now, in UTC: every time in the ledger is UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time in the ledger is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MessageRecord:
    """One row of the messages table."""

    id: str
    provider: str
    sender: str | None
    recipient: str | None
    conversation_id: str | None
    request: dict[str, Any]
    idempotency_key: str | None
    state: State
    reason: str | None
    attempts: int
    next_attempt_at: datetime | None
    provider_message_id: str | None
    provider_error_code: str | None
    provider_error_message: str | None
    created_at: datetime
    updated_at: datetime
    reply_id: str | None = None
    reply_title: str | None = None
    replied_at: datetime | None = None
    requested_at: datetime | None = None
    """When the current attempt's request was about to leave (``None`` before that)."""
    campaign_id: str | None = None
    fallback: dict[str, Any] | None = None
    """The template to send instead when the 24-hour window is closed (``None``: none)."""
    sent_as: str | None = None
    """``template`` once the message goes as its fallback template."""
    expires_at: datetime | None = None
    """Not sent by then, it fails ``expired`` (``None``: no validity given)."""
    held_until: datetime | None = None
    """A campaign's message waiting for its start or send window: no job is queued until then."""

    def send_request(self) -> SendRequest:
        """The stored request as a model (validated again)."""
        return SendRequest.model_validate(self.request)


def message_record(row: Any) -> MessageRecord:
    """A messages row as a :class:`MessageRecord`."""
    return MessageRecord(
        id=row.id,
        provider=row.provider,
        sender=row.sender,
        recipient=row.recipient,
        conversation_id=row.conversation_id,
        request=row.request,
        idempotency_key=row.idempotency_key,
        state=State(row.state),
        reason=row.reason,
        attempts=row.attempts,
        next_attempt_at=aware(row.next_attempt_at),
        provider_message_id=row.provider_message_id,
        provider_error_code=row.provider_error_code,
        provider_error_message=row.provider_error_message,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        reply_id=row.reply_id,
        reply_title=row.reply_title,
        replied_at=aware(row.replied_at),
        requested_at=aware(row.requested_at),
        campaign_id=row.campaign_id,
        fallback=row.fallback,
        sent_as=row.sent_as,
        expires_at=aware(row.expires_at),
        held_until=aware(row.held_until),
    )


@dataclass(frozen=True)
class Change:
    """One state change of a batch (see :meth:`Ledger.apply_many`).

    The message's ``next_attempt_at`` and provider fields are all set from this change: a field
    left ``None`` is cleared.
    """

    message_id: str
    from_state: State
    to_state: State
    attempt: int
    reason: str | None = None
    detail: dict[str, Any] | None = None
    next_attempt_at: datetime | None = None
    provider_message_id: str | None = None
    provider_error_code: str | None = None
    provider_error_message: str | None = None
    request_made: bool = True
    """False when no request reached the provider (held back by the limiter): the claim's attempt
    is given back, so ``attempts`` counts requests."""
    sent_as: str | None = None
    """``template``: from now on the message goes as its fallback template (never cleared)."""


@dataclass(frozen=True)
class TransitionRecord:
    """One row of the append-only transitions log."""

    from_state: State | None
    to_state: State
    at: datetime
    attempt: int
    reason: str | None
    detail: dict[str, Any] | None
