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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from wadispatch.campaigns import store as campaign_store
from wadispatch.campaigns.api import CANCELLED, CANCELLED_REASON
from wadispatch.ledger import Ledger, utcnow
from wadispatch.settings import Settings
from wadispatch.states import State

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
    stuck_failed: int = 0
    """Messages stuck in ``sending`` after their request left, marked ``failed`` /
    ``unknown_outcome``."""
    stuck_requeued: int = 0
    """Messages stuck in ``sending`` after their request left, moved back to ``pending`` and
    published (policy ``resend``)."""
    cancelled: int = 0
    """``pending`` messages of cancelled campaigns marked ``failed`` / ``cancelled``."""

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)

    def summary(self) -> str:
        verb = "would republish" if self.dry_run else "republished"
        parts = [f"{verb} {self.republished} pending"]
        if self.publish_failed:
            parts.append(f"{self.publish_failed} not published (broker down)")
        parts.append(
            f"stuck sending: {self.never_requested} never requested (requeued), "
            f"{self.stuck_failed} failed, {self.stuck_requeued} requeued"
        )
        parts.append(f"cancelled campaigns: {self.cancelled} pending failed")
        return ", ".join(parts)


def reconcile(
    ledger: Ledger,
    settings: Settings,
    publish: Publish,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> ReconcileReport:
    """One reconciler run: fail the ``pending`` messages of cancelled campaigns, settle stuck
    ``sending`` messages, then republish lost ``pending`` ones."""
    now = now or utcnow()
    report = ReconcileReport(dry_run=dry_run)
    sending_cutoff = now - timedelta(seconds=settings.reconcile_sending_after_seconds)
    pending_cutoff = now - timedelta(seconds=settings.reconcile_pending_after_seconds)
    page_size = settings.reconcile_page_size
    if dry_run:
        _dry_run(ledger, settings, report, sending_cutoff, now)
        return report

    for campaign_id in campaign_store.pending_by_status(ledger, CANCELLED):
        report.cancelled += campaign_store.fail_pending(ledger, campaign_id, CANCELLED_REASON, page_size)
    for _ in range(MAX_PAGES):
        page = ledger.stuck_sending_ids(sending_cutoff, page_size)
        _settle_stuck(ledger, settings, publish, page, sending_cutoff, now, report)
        if len(page) < page_size:
            break
    for page in _overdue_pending(ledger, settings, now):
        won = ledger.touch_stale_pending(page, pending_cutoff, now)
        _publish(publish, won, report)
    counts = (
        report.republished,
        report.publish_failed,
        report.never_requested,
        report.stuck_failed,
        report.stuck_requeued,
    )
    if any(counts) or report.cancelled:
        log.warning("reconciler: %s", report.summary())
    return report


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
    # A dead worker's claims whose request never left: nothing reached the provider.
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
    report.never_requested = ledger.count_stuck_sending(sending_cutoff, requested=False)
    stuck = ledger.count_stuck_sending(sending_cutoff, requested=True)
    if settings.stuck_sending_policy == "resend":
        report.stuck_requeued = stuck  # those out of attempts would be failed instead
    else:
        report.stuck_failed = stuck
    report.republished = sum(len(page) for page in _overdue_pending(ledger, settings, now))
    report.cancelled = sum(campaign_store.pending_by_status(ledger, CANCELLED).values())
