"""The reconciler: find messages whose job was lost, or whose attempt never ended, and settle them.

The ledger is the system of record; Redis only carries work. Two things can leave a message
without a job:

- ``pending`` with no job anywhere (lost in a Redis restart, or never published because the broker
  was down): a due ``pending`` message untouched for ``reconcile_pending_after_seconds`` has its job
  published again. We cannot cheaply prove that no job for it is left in Redis; we do not need to:
  the worker's claim (a conditional ``pending → sending`` UPDATE) makes a duplicate job a no-op.
  Only messages free to be sent count: a paused campaign's wait for ``resume``. A job may also
  just be waiting its turn behind the sender's rate limit (a long campaign), so a message is
  overdue only after the threshold *plus* the time the sender's limit needs for the messages
  queued before it (:func:`is_overdue`): a healthy backlog is not republished over and over.
- ``pending`` in a cancelled campaign (a retry that came back after ``cancel`` swept): ``failed``
  with reason ``cancelled``, like the rest of the campaign.
- a webhook event kept because it named a message whose send was not recorded yet: applied (with
  its effects) if the send has been recorded since without applying it (they crossed), dropped
  and logged once older than ``early_events_keep_seconds``.
- ``sending`` for longer than any attempt can take (its worker died mid-send). A worker marks
  each request just before it leaves and records each answer as it arrives (see
  :mod:`wadispatch.recording`), so a crash leaves three cases apart: answered (already recorded:
  not stuck), never requested (no ``requested_at``: moved back to ``pending``, its attempt given
  back, and published again; safe, nothing reached the provider), and requested without an
  answer, the only truly unknown outcome. For that one ``stuck_sending_policy`` decides: ``fail``
  (default) records ``failed`` / ``unknown_outcome`` and never risks a second send; ``resend``
  moves it back to ``pending`` and publishes it again, never losing it but perhaps sending it
  twice.

Safe on several machines at once: each change is one conditional UPDATE ... RETURNING, so a row
is acted on by exactly one reconciler. Work goes in pages of ``reconcile_page_size`` ids.

No flood: given the queue's state (``queue``, see :mod:`wadispatch.liveness`), a run holds back
republishing while no worker is alive or the queue already holds more than
``reconcile_max_queued_jobs`` jobs, and stops republishing once its own jobs reach that bound. The
held-back messages are left untouched, so the first run that finds a consumer republishes them.
What needs no consumer goes on: a cancelled campaign's pending fail, and under ``fail`` stuck
requests are settled ``failed`` (a ledger write; no job). A stuck claim that would be sent again
(never requested, or ``resend``) stays ``sending`` until then: moved back to ``pending`` without
its job, it would wait for the pending threshold once more. :mod:`wadispatch.reconciler` runs it
under a lock, one run at a time.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from wadispatch import metrics
from wadispatch.campaigns import store as campaign_store
from wadispatch.campaigns.api import CANCELLED, CANCELLED_REASON
from wadispatch.events import emit_expired
from wadispatch.inbox import apply_early
from wadispatch.ledger import Ledger, utcnow
from wadispatch.liveness import QueueState
from wadispatch.settings import Settings
from wadispatch.states import State
from wadispatch.window import get_windows

log = logging.getLogger("wadispatch.reconcile")

UNKNOWN_OUTCOME = "unknown_outcome"
#: The reason of a claim taken back from a dead worker before its request left.
NEVER_REQUESTED = "worker_lost"
#: A run stops after this many pages of each kind (a bound, never reached in practice).
MAX_PAGES = 10_000

Publish = Callable[[list[str]], int]


@dataclass
class ReconcileReport:
    """What one run did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    republished: int = 0
    """Pending messages whose job was published again."""
    publish_failed: int = 0
    """Pending messages whose job could not be published (broker down): tried again next run."""
    never_requested: int = 0
    """Messages stuck in ``sending`` whose request never left, moved back to ``pending`` and
    published (always safe)."""
    never_requested_expired: int = 0
    """Messages stuck in ``sending`` whose request never left, older than ``max_age_seconds``:
    ``failed`` / ``expired`` rather than sent again."""
    stuck_failed: int = 0
    """Messages stuck in ``sending`` after their request left, marked ``failed`` /
    ``unknown_outcome``."""
    stuck_requeued: int = 0
    """Messages stuck in ``sending`` after their request left, moved back to ``pending`` and
    published (policy ``resend``)."""
    cancelled: int = 0
    """``pending`` messages of cancelled campaigns marked ``failed`` / ``cancelled``."""
    expired: int = 0
    """``pending`` messages past their validity (``expires_at``) marked ``failed`` / ``expired``."""
    held_back: int = 0
    """Overdue ``pending`` messages not republished (see ``hold_reason``), left for a later run."""
    held_back_stuck: int = 0
    """Messages stuck in ``sending`` that would be published again, left ``sending`` for a later run."""
    hold_reason: str | None = None
    """Why republishing held back (no worker alive, a queue over its bound, the broker down)."""
    workers_alive: int | None = None
    """Workers with a fresh heartbeat (None: not looked at)."""
    last_heartbeat_seconds: float | None = None
    """Seconds since a worker of the queue was last heard from."""
    queued_jobs: int | None = None
    """Jobs waiting in the queue when the run began."""
    unacked_jobs: int | None = None
    """Jobs reserved by workers or waiting for their countdown (every queue of the Redis database)."""
    locked_out: bool = False
    """Another run held the lock: this one did nothing."""
    lock_holder: str | None = None
    """Who held it (host:pid:nonce), or why no lock was taken."""
    seconds: float | None = None
    """How long the run took."""
    early_events_applied: int = 0
    """Kept webhook events whose message's send was recorded meanwhile, applied by this run."""
    early_events_dropped: int = 0
    """Kept webhook events older than ``early_events_keep_seconds`` whose message never appeared."""

    def as_dict(self) -> dict[str, Any]:
        """Every field, for ``--json`` and the beat task's result."""
        return asdict(self)

    def summary(self) -> str:
        """One line for people."""
        if self.locked_out:
            return f"skipped: another reconciler run holds the lock ({self.lock_holder})"
        verb = "would republish" if self.dry_run else "republished"
        parts = [f"{verb} {self.republished} pending"]
        if self.hold_reason:
            held = f"held back: {self.hold_reason}, {self.held_back:,} pending overdue"
            if self.held_back_stuck:
                held += f", {self.held_back_stuck:,} stuck sending to send again"
            parts.append(held)
        if self.publish_failed:
            parts.append(f"{self.publish_failed} not published (broker down)")
        never = f"{self.never_requested} never requested (requeued)"
        if self.never_requested_expired:
            never += f", {self.never_requested_expired} never requested and too old (expired)"
        parts.append(f"stuck sending: {never}, {self.stuck_failed} failed, {self.stuck_requeued} requeued")
        parts.append(f"cancelled campaigns: {self.cancelled} pending failed")
        if self.expired:
            parts.append(f"validity ended: {self.expired} pending failed")
        if self.early_events_applied or self.early_events_dropped:
            applied, dropped = self.early_events_applied, self.early_events_dropped
            parts.append(f"early webhook events: {applied} applied, {dropped} dropped")
        return ", ".join(parts)


def reconcile(
    ledger: Ledger,
    settings: Settings,
    publish: Publish,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    queue: QueueState | None = None,
    hold: str | None = None,
    keep_alive: Callable[[], object] | None = None,
) -> ReconcileReport:
    """One reconciler run: fail the ``pending`` messages of cancelled campaigns, apply or drop the
    kept webhook events, settle stuck ``sending`` messages, then republish lost ``pending`` ones.

    ``queue``: the queue's state, to hold back republishing when nobody consumes it (None: not
    looked at, never held back); ``hold``: a reason to hold back found by the caller (the broker
    unreachable); ``keep_alive``: called after every page (the caller renews its lock).
    """
    now = now or utcnow()
    report = ReconcileReport(dry_run=dry_run)
    _note_queue(report, queue)
    report.hold_reason = hold or hold_reason(queue, settings)
    sending_cutoff = now - timedelta(seconds=settings.reconcile_sending_after_seconds)
    pending_cutoff = now - timedelta(seconds=settings.reconcile_pending_after_seconds)
    page_size = settings.reconcile_page_size
    tick = keep_alive or (lambda: None)
    if dry_run:
        _dry_run(ledger, settings, report, sending_cutoff, now)
        return report

    for campaign_id in campaign_store.pending_by_status(ledger, CANCELLED):
        report.cancelled += campaign_store.fail_pending(ledger, campaign_id, CANCELLED_REASON, page_size)
    _sweep_early_events(ledger, settings, now, report)
    _fail_expired(ledger, settings, now, report)
    budget = _JobBudget(settings, queue)
    if report.hold_reason:
        _settle_stuck_without_publishing(ledger, settings, sending_cutoff, now, report, tick)
    else:
        for _ in range(MAX_PAGES):
            page = ledger.stuck_sending_ids(sending_cutoff, page_size)
            _settle_stuck(ledger, settings, budget.counting(publish), page, sending_cutoff, now, report)
            tick()
            if len(page) < page_size:
                break
    for page in _overdue_pending(ledger, settings, now):
        if not report.hold_reason:
            allowed = budget.allows(len(page))
            won = ledger.touch_stale_pending(page[:allowed], pending_cutoff, now)
            _publish(budget.counting(publish), won, report)
            if allowed < len(page):
                report.hold_reason = budget.reason()
            page = page[allowed:]
        report.held_back += len(page)
        tick()
    _log(report)
    metrics.reconciled(report)
    return report


def _fail_expired(ledger: Ledger, settings: Settings, now: datetime, report: ReconcileReport) -> None:
    """Fail the ``pending`` messages whose validity ended unsent, whatever became of their job (a
    paused campaign's, one held for its window, one whose job was lost), with their events."""
    for _ in range(MAX_PAGES):
        page = ledger.expired_pending_ids(now, settings.reconcile_page_size)
        failed = ledger.fail_expired(page, now=now)
        report.expired += len(failed)
        if failed and "expired" in settings.event_tasks:
            emit_expired([ledger.get(message_id) for message_id in failed], settings)
        if len(page) < settings.reconcile_page_size:
            break


def _sweep_early_events(ledger: Ledger, settings: Settings, now: datetime, report: ReconcileReport) -> None:
    """Apply the kept webhook events a send's recording just missed (with their effects), and drop
    those whose message never appeared, saying so in the log."""
    applied = ledger.apply_matched_early_events(now=now)
    if applied:
        apply_early(applied, ledger=ledger, windows=get_windows(settings), settings=settings)
    report.early_events_applied = len(applied)
    dropped = ledger.drop_early_events(now - timedelta(seconds=settings.early_events_keep_seconds))
    report.early_events_dropped = len(dropped)
    for (provider, kind), count in Counter(dropped).items():
        log.info(
            "dropped %d %s webhook %s event(s) kept for %.0f s: their message never appeared",
            count,
            provider,
            kind,
            settings.early_events_keep_seconds,
        )


def hold_reason(queue: QueueState | None, settings: Settings) -> str | None:
    """Why republishing should hold back, given the queue's state; None to go on. Pure."""
    if queue is None:
        return None
    if settings.reconcile_requires_workers and queue.workers_alive == 0:
        if queue.last_heartbeat_seconds is None:
            return "no worker alive (none heard from)"
        return f"no worker alive (last heartbeat {queue.last_heartbeat_seconds:,.0f} s ago)"
    bound = settings.reconcile_max_queued_jobs
    if bound and queue.queued_jobs > bound:
        return f"queue holds {queue.queued_jobs:,} jobs, over its bound of {bound:,}"
    return None


class _JobBudget:
    """The jobs a run may still add to the queue before it reaches ``reconcile_max_queued_jobs``."""

    def __init__(self, settings: Settings, queue: QueueState | None) -> None:
        self.bound = settings.reconcile_max_queued_jobs if queue is not None else 0
        self.left = self.bound - queue.queued_jobs if queue is not None else 0
        self.per_job = settings.send_batch_size

    def allows(self, count: int) -> int:
        """How many of ``count`` messages may be published."""
        if not self.bound:
            return count
        return max(0, min(count, self.left * self.per_job))

    def counting(self, publish: Publish) -> Publish:
        """``publish``, counting the jobs it makes against the budget."""

        def counted(message_ids: list[str]) -> int:
            self.left -= -(-len(message_ids) // self.per_job)
            return publish(message_ids)

        return counted

    def reason(self) -> str:
        return f"queue reached its bound of {self.bound:,} jobs"


def _note_queue(report: ReconcileReport, queue: QueueState | None) -> None:
    if queue is None:
        return
    report.workers_alive = queue.workers_alive
    report.last_heartbeat_seconds = (
        None if queue.last_heartbeat_seconds is None else round(queue.last_heartbeat_seconds, 1)
    )
    report.queued_jobs = queue.queued_jobs
    report.unacked_jobs = queue.unacked_jobs


def _log(report: ReconcileReport) -> None:
    counts = (
        report.republished,
        report.publish_failed,
        report.never_requested,
        report.never_requested_expired,
        report.stuck_failed,
        report.stuck_requeued,
        report.cancelled,
        report.held_back,
        report.held_back_stuck,
        report.early_events_applied,
        report.early_events_dropped,
    )
    if any(counts):
        log.warning("reconciler: %s", report.summary())


def is_overdue(
    touched_at: datetime, ahead: int, now: datetime, threshold_seconds: float, rate: float
) -> bool:
    """Whether a ``pending`` message last touched (queued) at ``touched_at`` has waited too long. Pure.

    ``ahead`` messages of the same sender were queued before it; at the sender's ``rate`` (the
    limiter's, messages/s; 0 for no limit) they need ``ahead / rate`` seconds, during which its job
    may rightly still be waiting. Overdue: untouched for longer than the threshold plus that.
    """
    allowance = ahead / rate if rate > 0 else 0.0
    return now - touched_at > timedelta(seconds=threshold_seconds + allowance)


def _overdue_pending(ledger: Ledger, settings: Settings, now: datetime) -> Iterator[list[str]]:
    """Pages of ids of overdue ``pending`` messages, sender by sender, oldest first.

    Each sender's stale messages in the order they were queued: since the allowance grows with
    the messages ahead while the touch times grow too, the overdue ones are a prefix of that order,
    and the scan stops at the first message that is not overdue.
    """
    threshold = settings.reconcile_pending_after_seconds
    cutoff = now - timedelta(seconds=threshold)
    page_size = settings.reconcile_page_size
    for provider, sender in ledger.stale_pending_senders(cutoff):
        rate = _limiter_rate(settings, provider, sender)
        ahead = 0
        after: tuple[datetime, str] | None = None
        for _ in range(MAX_PAGES):
            page = ledger.stale_pending_page(provider, sender, cutoff, after, page_size)
            overdue = []
            for message_id, touched_at in page:
                if not is_overdue(touched_at, ahead, now, threshold, rate):
                    break
                overdue.append(message_id)
                ahead += 1
            if overdue:
                yield overdue
            if len(overdue) < page_size or len(page) < page_size:
                break
            after = (page[-1][1], page[-1][0])


def _limiter_rate(settings: Settings, provider: str, sender: str | None) -> float:
    """Messages/s the shared limiter lets the sender send (0: not limited)."""
    if not settings.rate_limiting:
        return 0.0
    return settings.sender_limit(provider, sender).rate * settings.rate_headroom


def _settle_stuck(
    ledger: Ledger,
    settings: Settings,
    publish: Publish,
    page: list[str],
    cutoff: datetime,
    now: datetime,
    report: ReconcileReport,
) -> None:
    # A dead worker's claims whose request never left: nothing reached the provider. Those past
    # the message's age limit fail instead, so that nothing is requeued for ever.
    expired = ledger.expire_never_requested(
        page,
        cutoff,
        now,
        created_before=now - timedelta(seconds=settings.max_age_seconds),
        detail={"reconciled": "stuck_sending", "requested": False, "gave_up": "expired"},
    )
    report.never_requested_expired += len(expired)
    never_requested = ledger.requeue_never_requested(
        page,
        cutoff,
        now,
        reason=NEVER_REQUESTED,
        detail={"reconciled": "stuck_sending", "requested": False},
    )
    report.never_requested += len(never_requested)
    _publish(publish, never_requested, report, count_as_republished=False)
    if settings.stuck_sending_policy == "resend":
        requeued = ledger.settle_stuck_sending(
            page,
            cutoff,
            now,
            to_state=State.PENDING,
            reason=UNKNOWN_OUTCOME,
            detail={"reconciled": "stuck_sending", "policy": "resend"},
            max_attempts=settings.max_attempts,
        )
        report.stuck_requeued += len(requeued)
        _publish(publish, requeued, report, count_as_republished=False)
    # Under `fail`, every stuck message; under `resend`, those out of attempts.
    failed = ledger.settle_stuck_sending(
        page,
        cutoff,
        now,
        to_state=State.FAILED,
        reason=UNKNOWN_OUTCOME,
        detail={"reconciled": "stuck_sending", "policy": settings.stuck_sending_policy},
    )
    report.stuck_failed += len(failed)


def _settle_stuck_without_publishing(
    ledger: Ledger,
    settings: Settings,
    cutoff: datetime,
    now: datetime,
    report: ReconcileReport,
    tick: Callable[[], object],
) -> None:
    """While republishing holds back: under ``fail``, settle the requests that left (a ledger
    write, no job); count the claims that would be sent again, left ``sending`` for a later run."""
    report.held_back_stuck = ledger.count_stuck_sending(cutoff, requested=False)
    if settings.stuck_sending_policy == "resend":
        report.held_back_stuck += ledger.count_stuck_sending(cutoff, requested=True)
        return
    page_size = settings.reconcile_page_size
    for _ in range(MAX_PAGES):
        page = ledger.stuck_sending_ids(cutoff, page_size, requested=True)
        report.stuck_failed += len(
            ledger.settle_stuck_sending(
                page,
                cutoff,
                now,
                to_state=State.FAILED,
                reason=UNKNOWN_OUTCOME,
                detail={"reconciled": "stuck_sending", "policy": settings.stuck_sending_policy},
            )
        )
        tick()
        if len(page) < page_size:
            break


def _publish(
    publish: Publish, message_ids: list[str], report: ReconcileReport, *, count_as_republished: bool = True
) -> None:
    if not message_ids:
        return
    published = publish(message_ids)
    report.publish_failed += len(message_ids) - published
    if count_as_republished:
        report.republished += published


def _dry_run(
    ledger: Ledger,
    settings: Settings,
    report: ReconcileReport,
    sending_cutoff: datetime,
    now: datetime,
) -> None:
    never_requested = ledger.count_stuck_sending(sending_cutoff, requested=False)
    stuck = ledger.count_stuck_sending(sending_cutoff, requested=True)
    resend = settings.stuck_sending_policy == "resend"
    overdue = sum(len(page) for page in _overdue_pending(ledger, settings, now))
    if report.hold_reason:
        report.held_back, report.held_back_stuck = overdue, never_requested + (stuck if resend else 0)
        report.stuck_failed = 0 if resend else stuck
    else:
        report.never_requested, report.republished = never_requested, overdue
        if resend:
            report.stuck_requeued = stuck  # those out of attempts would be failed instead
        else:
            report.stuck_failed = stuck
    report.cancelled = sum(campaign_store.pending_by_status(ledger, CANCELLED).values())
