"""What the operations page shows, as plain values its templates print. Pure: no I/O.

The page's reads (:mod:`wadispatch.api.ops`) hand over campaign progress, the senders' limiter
state, the queue and the latest failures; these functions turn them into rows of text and numbers,
so the templates only lay them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from wadispatch.campaigns.api import CampaignProgress
from wadispatch.campaigns.live import SenderLimit
from wadispatch.liveness import QueueState
from wadispatch.redaction import mask_recipient


def rate(value: float | None) -> str:
    """``12.3/s``, or ``-`` when there is no figure."""
    return "-" if value is None else f"{value:.1f}/s"


def duration(seconds: float | None) -> str:
    """``1h02m03s``, ``4m05s``, ``6s``; ``-`` for none."""
    if seconds is None:
        return "-"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def moment(value: datetime | None) -> str:
    """``2026-11-27 14:05:09`` (UTC), or ``-``."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def eta_text(progress: CampaignProgress) -> str:
    """The ETA as a duration, or the reason there is none (``unknown: no worker running``)."""
    if progress.eta_seconds is not None:
        return duration(progress.eta_seconds)
    return progress.eta_note or "-"


@dataclass(frozen=True)
class CampaignRow:
    id: str
    name: str
    status: str
    provider: str
    sender: str
    settled: int
    total: int
    percent: int
    """Settled of accepted, 0-100 (rounded down: 100 only when everything settled)."""
    states: list[tuple[str, int]]
    reasons: list[tuple[str, int]]
    started: str
    finished: str
    duration: str
    average_rate: str
    current_rate: str
    eta: str
    eta_unknown: bool
    rate_limited: int
    retries: int
    held_back: int
    reading: bool


def campaign_row(progress: CampaignProgress) -> CampaignRow:
    """A campaign's line of the page."""
    campaign = progress.campaign
    total = progress.total
    settled = progress.terminal
    percent = 100 * settled // total if total else 0
    return CampaignRow(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        provider=campaign.provider,
        sender=campaign.sender or "-",
        settled=settled,
        total=total,
        percent=percent,
        states=sorted(progress.states.items()),
        reasons=sorted(progress.failed_reasons.items(), key=lambda item: (-item[1], item[0])),
        started=moment(progress.started_at),
        finished=moment(progress.finished_at),
        duration=duration(progress.duration_seconds),
        average_rate=rate(progress.average_rate),
        current_rate=rate(progress.throughput),
        eta=eta_text(progress),
        eta_unknown=progress.eta_seconds is None and (progress.eta_note or "").startswith("unknown"),
        rate_limited=progress.rate_limited,
        retries=progress.retries,
        held_back=progress.held_back,
        reading=campaign.finished_reading_at is None,
    )


@dataclass(frozen=True)
class SenderRow:
    provider: str
    sender: str
    configured: str
    effective: str
    percent_of_limit: int | None
    """The effective rate as a share of the configured one (100: full rate), None when unknown."""
    current_rate: str
    rate_limited: int
    cooldown: str
    cooling: bool


def sender_rows(limits: Iterable[SenderLimit], campaigns: Iterable[CampaignProgress]) -> list[SenderRow]:
    """One line per sender: its configured and effective rate, the current rate and 429s of the
    campaigns shown for it, and its cooldown."""
    current: dict[tuple[str, str | None], float] = {}
    refused: dict[tuple[str, str | None], int] = {}
    for progress in campaigns:
        key = (progress.campaign.provider, progress.campaign.sender)
        current[key] = current.get(key, 0.0) + (progress.throughput or 0.0)
        refused[key] = refused.get(key, 0) + progress.rate_limited
    rows = []
    for limit in limits:
        key = (limit.provider, limit.sender)
        effective = limit.effective
        share = None if effective is None or not limit.declared else round(100 * effective / limit.declared)
        cooldown = limit.cooldown_seconds
        rows.append(
            SenderRow(
                provider=limit.provider,
                sender=limit.sender or "-",
                configured=rate(limit.declared),
                effective=rate(effective) if effective is not None else "unknown",
                percent_of_limit=share,
                current_rate=rate(current.get(key)),
                rate_limited=refused.get(key, 0),
                cooldown="unknown" if cooldown is None else (f"{cooldown:.1f}s" if cooldown > 0 else "none"),
                cooling=bool(cooldown),
            )
        )
    return rows


@dataclass(frozen=True)
class QueueRow:
    known: bool
    workers_alive: int
    last_heartbeat: str
    queued: int
    unacked: int


def queue_row(state: QueueState | None) -> QueueRow:
    """The queue's line: workers alive and jobs waiting; ``known`` False when Redis did not answer."""
    if state is None:
        return QueueRow(False, 0, "-", 0, 0)
    heard = state.last_heartbeat_seconds
    return QueueRow(
        True,
        state.workers_alive,
        "never" if heard is None else f"{heard:.0f}s ago",
        state.queued_jobs,
        state.unacked_jobs,
    )


@dataclass(frozen=True)
class FailureRow:
    message_id: str
    at: str
    provider: str
    sender: str
    recipient: str
    reason: str
    code: str
    campaign_id: str


def failure_row(
    message_id: str,
    at: datetime,
    provider: str,
    sender: str | None,
    recipient: str | None,
    reason: str | None,
    code: str | None,
    campaign_id: str | None,
) -> FailureRow:
    """A failed message's line (its recipient masked)."""
    return FailureRow(
        message_id,
        moment(at),
        provider,
        sender or "-",
        mask_recipient(recipient),
        reason or "unknown",
        code or "-",
        campaign_id or "-",
    )
