"""One send attempt: claim, translate, call, record. Shared by the Celery task and eager mode.

No Celery here: the task decides how to wait (``self.retry``), eager mode sleeps.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from workers.errors import ConfigurationError, MessageValidationError
from workers.ledger import Ledger, MessageRecord, utcnow
from workers.providers import Outcome, adapter_for
from workers.redaction import mask_phone
from workers.settings import Settings
from workers.states import State
from workers.transport import Transport

log = logging.getLogger("wadispatch.engine")

AttemptState = Literal["sent", "failed", "retry", "skipped", "not_due"]


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did. ``retry_in`` is set for ``retry`` and ``not_due``."""

    state: AttemptState
    retry_in: float | None = None
    outcome: Outcome | None = None

    def describe(self) -> str:
        """A short, secret-free description (what Flower shows as a retry's reason)."""
        if self.outcome is None:
            return self.state
        parts = [self.outcome.reason or self.outcome.kind]
        if self.outcome.status_code is not None:
            parts.append(f"HTTP {self.outcome.status_code}")
        if self.outcome.provider_code:
            parts.append(f"code {self.outcome.provider_code}")
        if self.retry_in is not None:
            parts.append(f"retry in {self.retry_in:.1f}s")
        return ", ".join(parts)


def attempt_send(
    message_id: str,
    *,
    ledger: Ledger,
    transport: Transport,
    settings: Settings,
    rng: random.Random | None = None,
) -> AttemptResult:
    """Claim the message, send it once, and record what happened.

    Raises :class:`~workers.errors.UnknownMessage` for an id the ledger does not know.
    """
    now = utcnow()
    record = ledger.claim(message_id, now=now)
    if record is None:
        current = ledger.get(message_id)
        if current.state is State.PENDING and current.next_attempt_at is not None:
            wait = max(0.0, (current.next_attempt_at - now).total_seconds())
            return AttemptResult("not_due", retry_in=wait)
        return AttemptResult("skipped")

    outcome = _call_provider(record, transport, settings)
    return _settle(ledger, record, outcome, settings, rng or random.Random())


def _call_provider(record: MessageRecord, transport: Transport, settings: Settings) -> Outcome:
    try:
        request = record.send_request()
    except MessageValidationError as exc:
        return Outcome.permanent("invalid", message=str(exc))
    adapter = adapter_for(request.provider)
    try:
        provider_request = adapter.build_request(request, settings, record.id)
    except ConfigurationError as exc:
        return Outcome.permanent("config", message=str(exc))
    return transport.send(provider_request, adapter)


def _settle(
    ledger: Ledger,
    record: MessageRecord,
    outcome: Outcome,
    settings: Settings,
    rng: random.Random,
) -> AttemptResult:
    now = utcnow()
    detail = _detail(outcome)
    errors = {
        "provider_error_code": outcome.provider_code,
        "provider_error_message": outcome.provider_message,
    }
    where = f"{record.id} via {record.provider} to {mask_phone(record.recipient)}"

    if outcome.kind == "accepted":
        ledger.transition(
            record.id,
            State.SENDING,
            State.SENT,
            detail=detail,
            now=now,
            provider_message_id=outcome.provider_message_id,
            provider_error_code=None,
            provider_error_message=None,
        )
        log.info("sent %s (attempt %d)", where, record.attempts)
        return AttemptResult("sent", outcome=outcome)

    if outcome.kind == "permanent":
        ledger.transition(
            record.id, State.SENDING, State.FAILED, reason=outcome.reason, detail=detail, now=now, **errors
        )
        log.warning("failed %s: %s", where, outcome.reason)
        return AttemptResult("failed", outcome=outcome)

    delay = retry_delay(outcome, record.attempts, settings, rng)
    give_up = _give_up_reason(record, now, delay, settings)
    if give_up is not None:
        reason = give_up if give_up == "expired" else _exhausted_reason(outcome)
        ledger.transition(
            record.id,
            State.SENDING,
            State.FAILED,
            reason=reason,
            detail={**detail, "gave_up": give_up},
            now=now,
            **errors,
        )
        log.warning("failed %s: %s after %d attempts", where, reason, record.attempts)
        return AttemptResult("failed", outcome=outcome)

    ledger.transition(
        record.id,
        State.SENDING,
        State.PENDING,
        reason=outcome.reason,
        detail={**detail, "retry_in": round(delay, 3)},
        now=now,
        next_attempt_at=now + timedelta(seconds=delay),
        **errors,
    )
    log.info("retry %s in %.1fs: %s", where, delay, outcome.reason)
    return AttemptResult("retry", retry_in=delay, outcome=outcome)


def retry_delay(outcome: Outcome, attempts: int, settings: Settings, rng: random.Random) -> float:
    """Seconds until the next attempt.

    The provider's own wait when it gave one (plus up to a second of jitter, so that the
    messages it held back do not all return in the same instant); otherwise exponential backoff
    with full jitter: uniform(0, min(cap, base * 2**(attempts - 1))).
    """
    if outcome.kind == "rate_limited" and outcome.retry_after is not None:
        return min(settings.backoff_cap_seconds, outcome.retry_after + rng.uniform(0, 1))
    ceiling = min(settings.backoff_cap_seconds, settings.backoff_base_seconds * 2 ** max(0, attempts - 1))
    return rng.uniform(0, ceiling)


def _give_up_reason(
    record: MessageRecord, now: datetime, delay: float, settings: Settings
) -> Literal["attempts", "expired"] | None:
    if record.attempts >= settings.max_attempts:
        return "attempts"
    deadline = record.created_at + timedelta(seconds=settings.max_age_seconds)
    if now + timedelta(seconds=delay) > deadline:
        return "expired"
    return None


def _exhausted_reason(outcome: Outcome) -> str:
    return "rate_limited" if outcome.kind == "rate_limited" else "provider_unavailable"


def _detail(outcome: Outcome) -> dict[str, object]:
    detail: dict[str, object] = {"outcome": outcome.kind}
    for key in ("status_code", "provider_code", "provider_message", "retry_after"):
        value = getattr(outcome, key)
        if value is not None:
            detail[key] = value
    return detail
