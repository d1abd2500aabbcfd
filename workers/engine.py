"""One send attempt for a batch of messages: load, take slots, claim, send, record.

Shared by the Celery tasks and eager mode; no Celery here: the caller decides how to wait for the
messages this returns as ``later`` (a Celery countdown, or a sleep in eager mode).

Per batch the ledger sees one read and one claim (an UPDATE and an INSERT), and Redis one
pipelined round trip for all the slots, however many messages the batch holds. The sends then
run concurrently on the process's event loop, and each is recorded as it happens (see
:mod:`wadispatch.recording`): marked requested just before its request leaves, settled as soon as
its answer arrives, in writes the process's sends share every few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from pydantic import ValidationError
from wadispatch import fallback, metrics
from wadispatch.errors import ConfigurationError, MessageValidationError
from wadispatch.later import Later
from wadispatch.ledger import Change, Ledger, MessageRecord, utcnow
from wadispatch.ledger.webhooks import EarlyApplied
from wadispatch.providers import Outcome, ProviderAdapter, ProviderRequest, adapter_for
from wadispatch.providers.templates import build_template_request
from wadispatch.ratelimit import CooldownView, Limiter
from wadispatch.recording import Recorder, recorder_for
from wadispatch.redaction import mask_phone, scrub_secrets
from wadispatch.settings import Settings
from wadispatch.states import THROTTLED, State
from wadispatch.templates import SENT_AS_TEMPLATE, load_fallback
from wadispatch.transport import SendLoop
from wadispatch.window import Windows

log = logging.getLogger("wadispatch.engine")

MAX_FRESH_SLOTS = 3
LATE_SLOT_MAX_WAIT_SECONDS = 1.0


@dataclass
class BatchResult:
    """What one batch attempt did with each message."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    later: list[Later] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Not pending any more (another job took them, or they are settled)."""
    unknown: list[str] = field(default_factory=list)
    """Ids the ledger has never seen (a poison job: dead-lettered by the task)."""
    unrecorded: list[str] = field(default_factory=list)
    """Attempts whose result the ledger could not take (left ``sending`` for the reconciler)."""
    closed_windows: list[MessageRecord] = field(default_factory=list)
    """The messages that failed ``window_closed`` (for the ``window_closed`` event)."""
    early_events: list[EarlyApplied] = field(default_factory=list)
    """Webhook events that had come before their sends were recorded, applied with them (the
    task gives them the effects a webhook's events have)."""
    campaigns: list[str] = field(default_factory=list)
    """The campaigns the batch's messages belong to (none for messages sent on their own)."""
    expired: list[MessageRecord] = field(default_factory=list)
    """The messages that failed ``expired``: their validity ended before a worker claimed them."""
    held: list[str] = field(default_factory=list)
    """Campaign messages outside their send window, held until it opens (no job until then)."""

    def summary(self) -> str:
        """What Flower shows as the job's result, e.g. ``sent 95, failed 2 (window_closed 2),
        later 3 (retry 3)``, after ``campaign <id>: `` when the messages are a campaign's; Flower's
        search finds the batches with failures (``result:failed``) and a campaign's
        (``result:<id>``)."""
        parts = [f"sent {len(self.sent)}"]
        if self.failed:
            reasons = Counter(self.failed.values())
            parts.append(f"failed {len(self.failed)} ({_counts(reasons)})")
        if self.later:
            parts.append(f"later {len(self.later)} ({_counts(Counter(item.reason for item in self.later))})")
        if self.held:
            parts.append(f"held {len(self.held)}")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)}")
        if self.unknown:
            parts.append(f"unknown {len(self.unknown)}")
        if self.unrecorded:
            parts.append(f"unrecorded {len(self.unrecorded)}")
        counts = ", ".join(parts)
        if not self.campaigns:
            return counts
        label = "campaign" if len(self.campaigns) == 1 else "campaigns"
        return f"{label} {', '.join(self.campaigns)}: {counts}"


def send_batch(
    message_ids: list[str],
    *,
    ledger: Ledger,
    limiter: Limiter,
    loop: SendLoop,
    settings: Settings,
    rng: random.Random | None = None,
    windows: Windows | None = None,
) -> BatchResult:
    """Try once to send each of these messages; return what became of each.

    With ``windows``, messages to pairs whose 24-hour window is known closed fail at once, and a
    provider's window error marks its pair closed.
    """
    rng = rng or random.Random()
    result = BatchResult()
    now = utcnow()
    pending = ledger.load_pending(message_ids)
    result.campaigns = list(dict.fromkeys(record.campaign_id for record in pending if record.campaign_id))
    known = {record.id for record in pending}
    not_pending = [message_id for message_id in message_ids if message_id not in known]
    if not_pending:
        # Rare (a duplicate job, or a poison one): tell settled messages from unknown ids.
        existing = ledger.existing_ids(not_pending)
        result.skipped += [message_id for message_id in not_pending if message_id in existing]
        result.unknown += [message_id for message_id in not_pending if message_id not in existing]

    pending = _fail_expired(pending, ledger, result, now)
    due: list[MessageRecord] = []
    for record in pending:
        if record.held_until is not None and record.held_until > now:
            # Held for its campaign's start or send window: the release queues it then.
            result.held.append(record.id)
        elif record.next_attempt_at is not None and record.next_attempt_at > now:
            wait = (record.next_attempt_at - now).total_seconds()
            result.later.append(Later(record.id, wait, "not_due", "not due yet"))
        else:
            due.append(record)
    as_template: set[str] = set()
    if windows is not None and due:  # the 24-hour window
        due, as_template = _fail_closed_windows(due, windows, ledger, result, now)
    # After the 24-hour window: one known closed would be closed at its send window's opening too.
    due = _hold_outside_windows(due, ledger, result, now, settings, windows)

    slots = limiter.acquire_many([(record.provider, record.sender, record.recipient) for record in due])
    waits: dict[str, float] = {}
    for record, slot in zip(due, slots, strict=True):
        if slot.granted:
            waits[record.id] = slot.wait
            metrics.limiter_waited(record.provider, record.sender, slot.wait)
            continue
        metrics.throttled(record.provider, record.sender)
        # The limiter told the message its own turn, behind those deferred before it (from any
        # worker): it comes back then, spread over the sender's coming slots.
        result.later.append(Later(record.id, slot.wait, "deferred", "waiting for the sender's rate limit"))

    acquired_at = time.monotonic()  # the clock of asyncio's loop.time()
    claimed = _claim(ledger, [record for record in due if record.id in waits], as_template)
    claimed_ids = {record.id for record in claimed}
    unclaimed = [record for record in due if record.id in waits and record.id not in claimed_ids]
    stopped = _fail_suppressed(ledger, unclaimed)
    result.failed.update(dict.fromkeys(stopped, "suppressed"))
    result.skipped += [record.id for record in unclaimed if record.id not in stopped]
    if not claimed:
        return result

    prepared = [prepare(record, settings) for record in claimed]
    attempts = Attempts(
        acquired_at, waits, limiter, loop, recorder_for(loop, ledger, settings), settings, rng
    )
    settled = loop.run(attempts.run_all(claimed, prepared))

    window_errors: list[MessageRecord] = []
    refused_windows: list[MessageRecord] = []  # the fallback template goes instead
    for record, attempt in zip(claimed, settled, strict=True):
        result.early_events += attempt.early
        change = attempt.change
        if change is None or attempt.stale:
            result.skipped.append(record.id)
        elif not attempt.recorded:
            result.unrecorded.append(record.id)
        elif change.to_state is State.SENT:
            result.sent.append(record.id)
        elif change.to_state is State.FAILED:
            result.failed[record.id] = change.reason or "failed"
            if change.reason == "window_closed":
                window_errors.append(record)
            log.warning(
                "failed %s via %s to %s: %s",
                record.id,
                record.provider,
                mask_phone(record.recipient),
                change.reason,
            )
        else:
            assert attempt.retry is not None
            result.later.append(attempt.retry)
            if change.sent_as is not None and change.reason == "window_closed":
                refused_windows.append(record)
    result.closed_windows += window_errors
    if windows is not None and (window_errors or refused_windows):
        _close_windows(windows, window_errors + refused_windows)
    _suppress_opted_out(ledger, claimed, result)
    return result


@dataclass(frozen=True)
class Prepared:
    """A claimed message ready for the wire: its adapter and its encoded provider request."""

    adapter: ProviderAdapter
    request: ProviderRequest


def prepare(record: MessageRecord, settings: Settings) -> Prepared | Outcome:
    """Validate the stored message again and build its provider request, or say why it cannot go.

    Runs in the worker thread, before the batch reaches the event loop, which then only does HTTP.
    """
    try:
        request = record.send_request()
        template = load_fallback(record.fallback) if fallback.goes_as_template(record) else None
    except (MessageValidationError, ValidationError) as exc:
        # Stored by an older release whose rules were looser: it can never go out.
        return Outcome.permanent("invalid", message=str(exc)[:1000])
    adapter = adapter_for(request.provider)
    try:
        if template is None:
            provider_request = adapter.build_request(request, settings, record.id)
        else:
            provider_request = build_template_request(adapter, request, template, settings, record.id)
        _ = provider_request.body  # encode here too, off the event loop
    except ConfigurationError as exc:
        return Outcome.permanent("config", message=str(exc))
    except Exception:  # a bug for one message must not strand the batch it was claimed with
        log.exception("could not build the request of %s", record.id)
        return Outcome.permanent("invalid", message="the provider request could not be built")
    return Prepared(adapter, provider_request)


# --- Validity and send windows ---------------------------------------------------------


def _fail_expired(
    pending: list[MessageRecord], ledger: Ledger, result: BatchResult, now: datetime
) -> list[MessageRecord]:
    """Fail the messages whose validity has ended (never claimed: no request); return the others."""
    expired = [record for record in pending if record.expires_at is not None and record.expires_at <= now]
    if not expired:
        return pending
    failed = set(ledger.fail_expired([record.id for record in expired], now=now))
    for record in expired:
        if record.id in failed:
            result.failed[record.id] = "expired"
            result.expired.append(record)
            metrics.settled(record.provider, record.sender, "failed", "expired")
        else:
            result.skipped.append(record.id)
    gone = {record.id for record in expired}
    return [record for record in pending if record.id not in gone]


def _hold_outside_windows(
    pending: list[MessageRecord],
    ledger: Ledger,
    result: BatchResult,
    now: datetime,
    settings: Settings,
    windows: Windows | None,
) -> list[MessageRecord]:
    """Hold the campaign messages whose send window is closed now until it opens (or, without a
    fallback template, until their 24-hour window closes, if that comes first); return the others."""
    if not any(record.campaign_id for record in pending):
        return pending
    from wadispatch.campaigns.holding import Hold, hold_times, window_holds

    holds = window_holds(pending, ledger, now, settings)
    if not holds:
        return pending
    times = [until for _, until in holds]
    if windows is not None:
        plan = [
            Hold((record.provider, record.sender, record.recipient), until, fallback.can_fall_back(record))
            for record, until in holds
        ]
        times = hold_times(plan, windows)
    held = set(
        ledger.hold([(record.id, until) for (record, _), until in zip(holds, times, strict=True)], now=now)
    )
    result.held += [record.id for record, _ in holds if record.id in held]
    result.skipped += [record.id for record, _ in holds if record.id not in held]
    holding = {record.id for record, _ in holds}
    return [record for record in pending if record.id not in holding]


# --- The 24-hour window ----------------------------------------------------------------


def _fail_closed_windows(
    due: list[MessageRecord], windows: Windows, ledger: Ledger, result: BatchResult, now: datetime
) -> tuple[list[MessageRecord], set[str]]:
    """Fail the messages to pairs known closed (one Redis round trip) unless they have a fallback
    template; return the others, and the ids of those that go as their template."""
    # A template needs no open window: the messages going as theirs are not asked about.
    asked = [record for record in due if not fallback.goes_as_template(record)]
    try:
        closed = windows.closed_among([(item.provider, item.sender, item.recipient) for item in asked])
    except Exception as exc:  # the window is a shortcut: without Redis the provider still decides
        log.warning("could not read the 24-hour windows: %s", type(exc).__name__)
        return due, set()
    closed_ids = {record.id for record, is_closed in zip(asked, closed, strict=True) if is_closed}
    as_template = {item.id for item in asked if item.id in closed_ids and fallback.can_fall_back(item)}
    failing = [record for record in asked if record.id in closed_ids and record.id not in as_template]
    if not failing:
        return due, as_template
    # Never claimed: no attempt to give back, and no request was made.
    changes = [
        Change(
            message_id=record.id,
            from_state=State.PENDING,
            to_state=State.FAILED,
            attempt=record.attempts,
            reason="window_closed",
            detail={"window": "known closed", "provider_request": False},
        )
        for record in failing
    ]
    stale = set(ledger.apply_many(changes, now=now))
    for record in failing:
        if record.id in stale:
            result.skipped.append(record.id)
        else:
            result.failed[record.id] = "window_closed"
            result.closed_windows.append(record)
            metrics.settled(record.provider, record.sender, "failed", "window_closed")
    failed = {record.id for record in failing}
    return [record for record in due if record.id not in failed], as_template


def _claim(ledger: Ledger, records: list[MessageRecord], as_template: set[str]) -> list[MessageRecord]:
    """Claim the records; those in ``as_template`` are claimed to go as their fallback template."""
    if not as_template:
        return ledger.claim_many(records, now=utcnow())
    interactive = [record for record in records if record.id not in as_template]
    templates = [record for record in records if record.id in as_template]
    claimed = ledger.claim_many(interactive, now=utcnow())
    claimed += ledger.claim_many(templates, now=utcnow(), sent_as=SENT_AS_TEMPLATE)
    return claimed


def _close_windows(windows: Windows, records: list[MessageRecord]) -> None:
    try:
        windows.close([(record.provider, record.sender, record.recipient) for record in records])
    except Exception as exc:  # the failure is recorded; only the shortcut for the next ones is lost
        log.warning("could not mark 24-hour windows closed: %s", type(exc).__name__)


@dataclass(frozen=True)
class Settled:
    """How one claimed message's attempt ended, as recorded."""

    change: Change | None
    """What was recorded; ``None`` when the claim was taken back before the request left."""
    retry: Later | None = None
    stale: bool = False
    """The message had already moved on (another process settled it): nothing was written."""
    recorded: bool = True
    """``False`` when the ledger could not be written (the reconciler settles the message)."""
    early: list[EarlyApplied] = field(default_factory=list)
    """Webhook events that had come before the send was recorded, applied with it."""


@dataclass
class Attempts:
    """The attempts of one batch on the send loop: each waits for its slot, is marked requested,
    goes out, and has its answer recorded the moment it arrives (through the :class:`Recorder`)."""

    acquired_at: float
    waits: dict[str, float]
    limiter: Limiter
    loop: SendLoop
    recorder: Recorder
    settings: Settings
    rng: random.Random

    async def run_all(
        self, records: list[MessageRecord], prepared: list[Prepared | Outcome]
    ) -> list[Settled]:
        """Run every attempt concurrently; each is recorded as soon as it ends."""
        return await asyncio.gather(
            *(self.run(record, ready) for record, ready in zip(records, prepared, strict=True))
        )

    async def run(self, record: MessageRecord, prepared: Prepared | Outcome) -> Settled:
        """One message's attempt, from its slot to its recorded result."""
        outcome, requested = await self._outcome(record, prepared)
        if outcome is None:
            return Settled(change=None)
        now = utcnow()
        change, retry_in = decide(record, outcome, self.settings, self.rng, now, requested=requested)
        change, retry_in = fallback.after_attempt(record, outcome, change, retry_in, now)
        description = describe(outcome, retry_in)
        if change.sent_as is not None and not fallback.goes_as_template(record):
            description = f"{outcome.reason}: the fallback template goes instead"
        retry = None if retry_in is None else Later(record.id, retry_in, "retry", description)
        try:
            settlement = await self.recorder.settle(change)
        except Exception as exc:  # the database stayed away: the reconciler settles it later
            log.error(
                "could not record the result of %s (%s): %s", record.id, change.to_state, type(exc).__name__
            )
            return Settled(change, retry, recorded=False)
        if settlement.applied:
            if outcome.provider_code == THROTTLED:
                metrics.throttled(record.provider, record.sender)
            metrics.settled(
                record.provider, record.sender, change.to_state.value, change.reason, self.settings
            )
        return Settled(change, retry, stale=not settlement.applied, early=settlement.early)

    async def _outcome(
        self, record: MessageRecord, prepared: Prepared | Outcome
    ) -> tuple[Outcome | None, bool]:
        """The attempt's outcome and whether its request left (``None``: the claim was lost)."""
        if isinstance(prepared, Outcome):
            return prepared, False
        slot = _Slot(self.acquired_at + self.waits[record.id], self.waits[record.id] > 0)
        # A paced message is marked ahead of its slot, so that the ledger's write does not make
        # it late; it then waits for the slot itself, where lateness is judged.
        lead = self.settings.mark_lead_seconds if slot.paced else 0.0
        held_back = await self._wait(record, slot, lead)
        if held_back is not None:
            return held_back, False
        try:
            if not await self.recorder.mark_requested(record):
                return None, False
        except Exception as exc:  # unrecorded, the request must not leave: try again later
            log.warning("could not mark %s requested: %s", record.id, type(exc).__name__)
            return Outcome.transient("ledger_unavailable", message=type(exc).__name__), False
        if lead:
            held_back = await self._wait(record, slot, 0.0)
            if held_back is not None:
                return held_back, False
        return await self._send(record, prepared), True

    async def _wait(self, record: MessageRecord, slot: _Slot, lead: float) -> Outcome | None:
        try:
            return await _wait_for_slot(
                record,
                slot,
                self.limiter,
                self.loop.cooldowns(self.limiter),
                self.loop.loop,
                self.settings,
                lead=lead,
            )
        except Exception:  # a bug must not strand the batch in `sending`; nothing was sent yet
            log.exception("could not wait for the slot of %s", record.id)
            return Outcome.transient("internal_error", message="waiting for a slot failed")

    async def _send(self, record: MessageRecord, prepared: Prepared) -> Outcome:
        settings, limiter = self.settings, self.limiter
        try:
            async with self.loop.in_flight:
                started = time.monotonic()
                outcome = await self.loop.transport.send(prepared.request, prepared.adapter)
                metrics.provider_answered(
                    record.provider, outcome.kind, outcome.status_code, time.monotonic() - started
                )
        except Exception:  # a bug past the request: it may have gone out, so it is not retried
            log.exception("could not read the answer for %s", record.id)
            return Outcome.permanent("unknown_outcome", message="reading the provider's answer failed")
        if outcome.provider_message:
            # A provider may echo the credential back in its error text: it must not reach the ledger.
            scrubbed = scrub_secrets(outcome.provider_message, settings.secret_values())
            outcome = replace(outcome, provider_message=scrubbed)
        if outcome.kind == "rate_limited":
            try:
                cooldown = await limiter.penalize(record.provider, record.sender, outcome.retry_after)
            except Exception as exc:  # Redis trouble must not lose the outcome
                log.warning("could not record a 429 for %s: %s", record.provider, type(exc).__name__)
                cooldown = outcome.retry_after or settings.backoff_base_seconds
            self.loop.cooldowns(limiter).note(record.provider, record.sender, cooldown)
            metrics.rate_limited(record.provider, record.sender, cooldown)
            outcome = replace(outcome, retry_after=max(outcome.retry_after or 0.0, cooldown))
        return outcome


@dataclass
class _Slot:
    """When a message may go: ``due_at`` on the event loop's clock; ``paced`` when the limiter
    made it wait (a fresh slot replaces both)."""

    due_at: float
    paced: bool


async def _wait_for_slot(
    record: MessageRecord,
    slot: _Slot,
    limiter: Limiter,
    cooldowns: CooldownView,
    event_loop: asyncio.AbstractEventLoop,
    settings: Settings,
    *,
    lead: float = 0.0,
) -> Outcome | None:
    """Sleep until ``lead`` seconds before the message's slot; ``None`` to go on, or why it is
    held back.

    A message of a paced sender (its slot was in the future) that wakes up late (its event loop
    was busy, or the ledger's write took long) takes a fresh slot instead of going out right
    behind, or together with, the next message's: that bunching is what would push a second's
    count over the provider's limit.
    """
    for _ in range(MAX_FRESH_SLOTS + 1):
        await asyncio.sleep(max(0.0, slot.due_at - lead - event_loop.time()))
        try:
            cooling = await cooldowns.left(record.provider, record.sender)
        except Exception as exc:  # the limiter is a safeguard; Redis trouble does not stop sends
            log.warning("could not read the cooldown of %s: %s", record.provider, type(exc).__name__)
            return None
        if cooling > 0:
            # A 429 arrived (at any worker) after this message got its slot: hold it back too.
            return Outcome.rate_limited(cooling, code=THROTTLED, message="sender cooling down after a 429")
        if not slot.paced or event_loop.time() - slot.due_at <= settings.limiter_lateness_seconds:
            return None
        # The sender's coming seconds are booked: a fresh slot is at their end. One further away
        # than a second is not waited for (holding the batch's job); the message comes back then.
        late_wait = min(settings.limiter_max_wait_seconds, LATE_SLOT_MAX_WAIT_SECONDS)
        try:
            fresh = await limiter.acquire(
                record.provider, record.sender, record.recipient, max_wait=late_wait
            )
        except Exception as exc:  # as for the cooldown: Redis trouble does not stop sends
            log.warning("could not take a fresh slot for %s: %s", record.provider, type(exc).__name__)
            return None
        if not fresh.granted:
            return Outcome.rate_limited(fresh.wait, code=THROTTLED, message="late for its slot; rescheduled")
        slot.due_at = event_loop.time() + fresh.wait
        slot.paced = fresh.wait > 0
    return None


def decide(
    record: MessageRecord,
    outcome: Outcome,
    settings: Settings,
    rng: random.Random,
    now: datetime,
    *,
    requested: bool = True,
) -> tuple[Change, float | None]:
    """The state change an outcome calls for, and the retry delay when it is a retry. Pure.

    ``requested``: whether the attempt's request left. One that did not (held back by the
    limiter, or stopped before the wire) gives its attempt back: attempts count requests.
    """
    detail = _detail(outcome)
    base = {
        "message_id": record.id,
        "from_state": State.SENDING,
        "attempt": record.attempts,
        "provider_error_code": outcome.provider_code,
        "provider_error_message": outcome.provider_message,
    }
    if outcome.kind == "accepted":
        change = Change(
            message_id=record.id,
            from_state=State.SENDING,
            to_state=State.SENT,
            attempt=record.attempts,
            detail=detail,
            provider_message_id=outcome.provider_message_id,
        )
        return change, None
    if outcome.kind == "permanent":
        return Change(**base, to_state=State.FAILED, reason=outcome.reason, detail=detail), None

    delay = retry_delay(outcome, record.attempts, settings, rng)
    give_up = _give_up_reason(record, now, delay, settings, requested=requested)
    if give_up is not None:
        reason = give_up if give_up == "expired" else _exhausted_reason(outcome)
        detail = {**detail, "gave_up": give_up}
        return Change(**base, to_state=State.FAILED, reason=reason, detail=detail), None
    change = Change(
        **base,
        to_state=State.PENDING,
        reason=outcome.reason,
        detail={**detail, "retry_in": round(delay, 3)},
        next_attempt_at=now + timedelta(seconds=delay),
        request_made=requested,
    )
    return change, delay


def retry_delay(outcome: Outcome, attempts: int, settings: Settings, rng: random.Random) -> float:
    """Seconds until the next attempt.

    The provider's (or the shared cooldown's) wait when there is one, plus up to a second of
    jitter so that the messages it held back do not all return in the same instant; otherwise
    exponential backoff with full jitter: uniform(0, min(cap, base * 2**(attempts - 1))).
    """
    if outcome.kind == "rate_limited" and outcome.retry_after is not None:
        return min(settings.backoff_cap_seconds, outcome.retry_after + rng.uniform(0, 1))
    ceiling = min(settings.backoff_cap_seconds, settings.backoff_base_seconds * 2 ** max(0, attempts - 1))
    return rng.uniform(0, ceiling)


def describe(outcome: Outcome, retry_in: float | None = None) -> str:
    """A short, secret-free description, e.g. ``rate_limited, HTTP 429, retry in 1.3s``."""
    parts = [outcome.reason or outcome.kind]
    if outcome.status_code is not None:
        parts.append(f"HTTP {outcome.status_code}")
    if outcome.provider_code:
        parts.append(f"code {outcome.provider_code}")
    if retry_in is not None:
        parts.append(f"retry in {retry_in:.1f}s")
    return ", ".join(parts)


def _give_up_reason(
    record: MessageRecord, now: datetime, delay: float, settings: Settings, *, requested: bool
) -> Literal["attempts", "expired"] | None:
    # An attempt that made no request does not use up the attempt budget.
    if record.attempts >= settings.max_attempts and requested:
        return "attempts"
    # A validity given with the message (or its campaign) replaces the default age limit: a
    # campaign held for its start or send window may be retried long after it was created.
    deadline = record.expires_at or record.created_at + timedelta(seconds=settings.max_age_seconds)
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


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counter.most_common())


# --- campaigns: a message whose recipient went on the suppression list after it was queued ---
def _fail_suppressed(ledger: Ledger, unclaimed: list[MessageRecord]) -> set[str]:
    """Of the campaign messages the claim refused (rare: paused, claimed by another worker, or
    their recipient suppressed since they were queued), fail those suppressed."""
    in_campaigns = [record.id for record in unclaimed if record.campaign_id]
    if not in_campaigns:
        return set()
    from wadispatch.campaigns.store import fail_suppressed

    return set(fail_suppressed(ledger, in_campaigns))


# --- campaigns: a recipient the provider says opted out goes on the suppression list ---
def _suppress_opted_out(ledger: Ledger, claimed: list[MessageRecord], result: BatchResult) -> None:
    pairs = [
        (record.sender, record.recipient)
        for record in claimed
        if record.recipient and result.failed.get(record.id) == "opted_out"
    ]
    if not pairs:
        return
    from wadispatch.campaigns.store import suppress

    try:
        suppress(ledger, pairs, reason="opted out (provider)", source="provider")
    except Exception as exc:  # the batch is settled already; a missed suppression is only logged
        log.warning("could not record %d opt-out(s): %s", len(pairs), type(exc).__name__)
