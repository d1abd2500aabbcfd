"""The reconciler: find messages whose job was lost, or whose attempt never ended, and settle them.

The ledger is the system of record; Redis only carries work. Two things can leave a message
without a job:

- ``pending`` with no job anywhere (lost in a Redis restart, or never published because the broker
  was down): a due ``pending`` message untouched for ``reconcile_pending_after_seconds`` has its job
  published again. We cannot cheaply prove that no job for it is left in Redis; we do not need to:
  the worker's claim (a conditional ``pending → sending`` UPDATE) makes a duplicate job a no-op.
- ``sending`` for longer than any attempt can take (its worker died mid-send): nobody knows
  whether the provider got it. ``stuck_sending_policy`` decides: ``fail`` (default) records
  ``failed`` / ``unknown_outcome`` and never risks a second send; ``resend`` moves it back to
  ``pending`` and publishes it again, never losing it but perhaps sending it twice.

Safe on several machines at once: each change is one conditional UPDATE ... RETURNING, so a row
is acted on by exactly one reconciler. Work goes in pages of ``reconcile_page_size`` ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from workers.ledger import Ledger, utcnow
from workers.settings import Settings
from workers.states import State

log = logging.getLogger("wadispatch.reconcile")

UNKNOWN_OUTCOME = "unknown_outcome"
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
    stuck_failed: int = 0
    """Messages stuck in ``sending`` marked ``failed`` / ``unknown_outcome``."""
    stuck_requeued: int = 0
    """Messages stuck in ``sending`` moved back to ``pending`` and published (policy ``resend``)."""

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)

    def summary(self) -> str:
        verb = "would republish" if self.dry_run else "republished"
        parts = [f"{verb} {self.republished} pending"]
        if self.publish_failed:
            parts.append(f"{self.publish_failed} not published (broker down)")
        parts.append(f"stuck sending: {self.stuck_failed} failed, {self.stuck_requeued} requeued")
        return ", ".join(parts)


def reconcile(
    ledger: Ledger,
    settings: Settings,
    publish: Publish,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> ReconcileReport:
    """One reconciler run: settle stuck ``sending`` messages, then republish lost ``pending`` ones."""
    now = now or utcnow()
    report = ReconcileReport(dry_run=dry_run)
    sending_cutoff = now - timedelta(seconds=settings.reconcile_sending_after_seconds)
    pending_cutoff = now - timedelta(seconds=settings.reconcile_pending_after_seconds)
    page_size = settings.reconcile_page_size
    if dry_run:
        _dry_run(ledger, settings, report, sending_cutoff, pending_cutoff)
        return report

    for _ in range(MAX_PAGES):
        page = ledger.stuck_sending_ids(sending_cutoff, page_size)
        _settle_stuck(ledger, settings, publish, page, sending_cutoff, now, report)
        if len(page) < page_size:
            break
    for _ in range(MAX_PAGES):
        page = ledger.stale_pending_ids(pending_cutoff, page_size)
        won = ledger.touch_stale_pending(page, pending_cutoff, now)
        _publish(publish, won, report)
        if len(page) < page_size:
            break
    if report.republished or report.publish_failed or report.stuck_failed or report.stuck_requeued:
        log.warning("reconciler: %s", report.summary())
    return report


def _settle_stuck(
    ledger: Ledger,
    settings: Settings,
    publish: Publish,
    page: list[str],
    cutoff: datetime,
    now: datetime,
    report: ReconcileReport,
) -> None:
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
    pending_cutoff: datetime,
) -> None:
    stuck = ledger.count_stuck_sending(sending_cutoff)
    if settings.stuck_sending_policy == "resend":
        report.stuck_requeued = stuck  # those out of attempts would be failed instead
    else:
        report.stuck_failed = stuck
    report.republished = ledger.count_stale_pending(pending_cutoff)
