"""The API's request and response bodies (pydantic), as documented in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from wadispatch.ledger import MessageRecord, TransitionRecord


class FieldErrorOut(BaseModel):
    path: str = Field(
        description="Where, e.g. `interactive.action.buttons[3]` (`(request)`: the whole body)."
    )
    rule: str = Field(description="What is wrong, e.g. `at most 3 buttons`.")


class ErrorBody(BaseModel):
    """Every error answer: a stable ``error`` code, a sentence, and the field errors of a 422."""

    error: str = Field(
        description="invalid_request, malformed_json, malformed_form, body_too_large, "
        "unsupported_media_type, unauthorized, not_found, invalid_signature or unknown_provider"
    )
    message: str
    errors: list[FieldErrorOut] = Field(default_factory=list)


class Accepted(BaseModel):
    """A message accepted for sending (or, for a repeated Idempotency-Key, the first one)."""

    message_id: str
    status: str = Field(description="`pending` for a new message; the current state for a repeat.")
    duplicate: bool = Field(default=False, description="True when the Idempotency-Key was used before.")


class TransitionOut(BaseModel):
    from_state: str | None
    to_state: str
    at: datetime
    attempt: int
    reason: str | None
    detail: dict[str, Any] | None

    @classmethod
    def of(cls, transition: TransitionRecord) -> TransitionOut:
        return cls(
            from_state=transition.from_state.value if transition.from_state else None,
            to_state=transition.to_state.value,
            at=transition.at,
            attempt=transition.attempt,
            reason=transition.reason,
            detail=transition.detail,
        )


class ProviderError(BaseModel):
    code: str | None
    message: str | None


class ReplyOut(BaseModel):
    id: str
    title: str | None
    at: datetime | None


class MessageOut(BaseModel):
    """A message as the ledger holds it."""

    message_id: str
    provider: str
    sender: str | None
    to: str | None
    conversation_id: str | None
    state: str = Field(description="pending, sending, sent, delivered, read or failed")
    reason: str | None = Field(description="Why it failed (or why it waits to be retried).")
    attempts: int = Field(description="Requests that reached the provider.")
    provider_message_id: str | None
    last_provider_error: ProviderError | None
    next_attempt_at: datetime | None
    expires_at: datetime | None = Field(
        default=None, description="Not sent by then, it fails `expired` (null: no validity)."
    )
    held_until: datetime | None = Field(
        default=None, description="A campaign message waiting for its start or send window until then."
    )
    created_at: datetime
    updated_at: datetime
    reply: ReplyOut | None = Field(description="The button or row the recipient chose, if any.")
    sent_as: str | None = Field(
        default=None,
        description="`template` when the fallback template went instead of the interactive message "
        "(the recipient's 24-hour window was closed); otherwise null.",
    )
    fallback: dict[str, Any] | None = Field(
        default=None, description="The fallback template named with the message, if any."
    )
    metadata: dict[str, Any]
    transitions: list[TransitionOut]

    @classmethod
    def of(cls, record: MessageRecord, transitions: list[TransitionRecord]) -> MessageOut:
        error = None
        if record.provider_error_code or record.provider_error_message:
            error = ProviderError(code=record.provider_error_code, message=record.provider_error_message)
        reply = None
        if record.reply_id is not None:
            reply = ReplyOut(id=record.reply_id, title=record.reply_title, at=record.replied_at)
        return cls(
            message_id=record.id,
            provider=record.provider,
            sender=record.sender,
            to=record.recipient,
            conversation_id=record.conversation_id,
            state=record.state.value,
            reason=record.reason,
            attempts=record.attempts,
            provider_message_id=record.provider_message_id,
            last_provider_error=error,
            next_attempt_at=record.next_attempt_at,
            expires_at=record.expires_at,
            held_until=record.held_until,
            created_at=record.created_at,
            updated_at=record.updated_at,
            reply=reply,
            sent_as=record.sent_as,
            fallback=record.fallback,
            metadata=record.request.get("metadata") or {},
            transitions=[TransitionOut.of(transition) for transition in transitions],
        )


class WebhookReceived(BaseModel):
    """What a webhook's events did: counts by outcome (replies, statuses, inbound, unchanged,
    duplicates, unmatched, ignored)."""

    received: int
    outcomes: dict[str, int]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not a JSON object."},
    401: {"model": ErrorBody, "description": "No valid API key."},
    413: {"model": ErrorBody, "description": "The body is larger than WADISPATCH_API_MAX_BODY_BYTES."},
}
