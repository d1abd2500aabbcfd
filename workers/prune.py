"""The prune: delete what the ledger no longer needs, so that it stops growing without bound.

Four kinds of rows, each kept for its own ``WADISPATCH_PRUNE_*_AFTER_DAYS`` (0: forever):

- webhook event keys, once no provider will redeliver the event (at least 7 days);
- the transitions of settled messages (the message rows stay, with their outcome);
- dead letters replayed long ago (never one not yet replayed);
- the skipped rows of ended campaigns.

Celery beat runs it every ``prune_interval_seconds``; ``wadispatch prune`` runs it by hand. Each
kind is deleted in batches of ``prune_batch_size`` rows, one short transaction per batch (see
:mod:`wadispatch.ledger.pruning`), so a prune can run beside the workers at any time; two
prunes at once are harmless (a row is deleted once, by either).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from wadispatch.ledger import Ledger, PruneKind, utcnow
from wadispatch.settings import Settings

log = logging.getLogger("wadispatch.prune")

#: The setting holding each kind's retention, in days.
RETENTION_SETTINGS: dict[PruneKind, str] = {
    PruneKind.WEBHOOK_EVENTS: "prune_webhook_events_after_days",
    PruneKind.TRANSITIONS: "prune_transitions_after_days",
    PruneKind.DEAD_LETTERS: "prune_dead_letters_after_days",
    PruneKind.CAMPAIGN_ERRORS: "prune_campaign_errors_after_days",
}

#: How each kind is named to people.
LABELS: dict[PruneKind, str] = {
    PruneKind.WEBHOOK_EVENTS: "webhook events",
    PruneKind.TRANSITIONS: "transitions",
    PruneKind.DEAD_LETTERS: "dead letters",
    PruneKind.CAMPAIGN_ERRORS: "campaign errors",
}


@dataclass
class PruneReport:
    """What one prune deleted (or, with ``dry_run``, would delete), per kind; a kind whose
    retention is 0 (kept forever) is left out of ``deleted``."""

    dry_run: bool = False
    deleted: dict[PruneKind, int] = field(default_factory=dict)
    retention_days: dict[PruneKind, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, bool | int | None]:
        """``dry_run`` and one count per kind (``None``: that kind is never pruned)."""
        counts: dict[str, bool | int | None] = {"dry_run": self.dry_run}
        counts.update({kind.value: self.deleted.get(kind) for kind in PruneKind})
        return counts

    def lines(self) -> list[str]:
        """One line per kind: how many rows went (or would go), and how long they were kept."""
        verb = "would delete" if self.dry_run else "deleted"
        width = max(len(label) for label in LABELS.values())
        lines = []
        for kind in PruneKind:
            label = LABELS[kind].ljust(width)
            if kind in self.deleted:
                days = self.retention_days[kind]
                lines.append(f"{label}  {verb} {self.deleted[kind]} (kept {days} days)")
            else:
                setting = f"WADISPATCH_{RETENTION_SETTINGS[kind].upper()}"
                lines.append(f"{label}  kept forever ({setting}=0)")
        return lines

    def summary(self) -> str:
        """The counts on one line (for the log)."""
        verb = "would delete" if self.dry_run else "deleted"
        parts = [f"{count} {LABELS[kind]}" for kind, count in self.deleted.items()]
        return f"{verb} " + (", ".join(parts) if parts else "nothing (every kind is kept forever)")


def cutoffs(settings: Settings, now: datetime) -> dict[PruneKind, datetime]:
    """The time before which each kind is pruned, for the kinds that are pruned at all. Pure."""
    return {
        kind: now - timedelta(days=days)
        for kind, name in RETENTION_SETTINGS.items()
        if (days := getattr(settings, name)) > 0
    }


def prune(
    ledger: Ledger, settings: Settings, *, now: datetime | None = None, dry_run: bool = False
) -> PruneReport:
    """One prune of every kind past its retention; with ``dry_run``, count instead of delete."""
    now = now or utcnow()
    report = PruneReport(dry_run=dry_run)
    for kind, cutoff in cutoffs(settings, now).items():
        report.retention_days[kind] = getattr(settings, RETENTION_SETTINGS[kind])
        if dry_run:
            report.deleted[kind] = ledger.count_prunable(kind, cutoff)
        else:
            report.deleted[kind] = ledger.prune(kind, cutoff, batch_size=settings.prune_batch_size)
    if not dry_run and any(report.deleted.values()):
        log.info("prune: %s", report.summary())
    return report
