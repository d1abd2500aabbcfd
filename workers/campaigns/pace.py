"""A campaign's pace from its timeline: duration, average and current rate, and its ETA. Pure.

* **duration**: from the first claim to the last settle once the campaign is finished, to now
  while it runs;
* **average rate**: messages settled / duration;
* **current rate**: messages settled over the last :data:`WINDOW_SECONDS` (or since the start, when
  that is shorter); ``None`` before the start and after the end, so a finished campaign does not
  show a rate decaying towards 0 for half a minute;
* **ETA**: remaining / the lower of the current rate and the sender's effective limit (the limit
  alone before anything settled). Unknown (``None`` and a note saying why) when no worker is alive,
  when the broker cannot be asked, and while the campaign is paused or cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: The window of the current rate, in seconds.
WINDOW_SECONDS = 30.0

NO_WORKER = "unknown: no worker running"
NO_BROKER = "unknown: cannot reach the broker"


@dataclass(frozen=True)
class Pace:
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    average_rate: float | None
    current_rate: float | None


def window_seconds(started_at: datetime | None, now: datetime) -> float:
    """The current rate's window: :data:`WINDOW_SECONDS`, or the time since the start (at least 1 s)."""
    if started_at is None:
        return WINDOW_SECONDS
    return max(1.0, min(WINDOW_SECONDS, (now - started_at).total_seconds()))


def pace(
    *,
    started_at: datetime | None,
    last_settle_at: datetime | None,
    settled: int,
    settled_in_window: int,
    finished: bool,
    now: datetime,
) -> Pace:
    """The campaign's pace. ``finished``: every row read and every message settled."""
    if started_at is None:
        return Pace(None, None, None, None, None)
    finished_at = last_settle_at if finished and last_settle_at is not None else None
    end = finished_at or now
    duration = max(0.0, (end - started_at).total_seconds())
    average = settled / duration if duration > 0 else None
    current = None if finished_at is not None else settled_in_window / window_seconds(started_at, now)
    return Pace(started_at, finished_at, duration, average, current)


@dataclass(frozen=True)
class Eta:
    seconds: float | None
    note: str | None
    """Why there is no figure (``unknown: no worker running``, ``paused``...), or None."""


def eta(
    remaining: int,
    current_rate: float | None,
    limit: float | None,
    *,
    status: str,
    workers_alive: int | None,
) -> Eta:
    """Seconds until the ``remaining`` messages are settled, or why that cannot be said.

    ``limit``: the sender's effective rate (None when unknown); ``workers_alive``: None when the
    broker could not be asked.
    """
    if status != "running":
        return Eta(None, status)
    if remaining == 0:
        return Eta(0.0, None)
    if workers_alive is None:
        return Eta(None, NO_BROKER)
    if workers_alive == 0:
        return Eta(None, NO_WORKER)
    rates = [rate for rate in (current_rate, limit) if rate is not None and rate > 0]
    if current_rate:
        rates = [min(rates)]
    if not rates:
        return Eta(None, "unknown: nothing settled yet")
    return Eta(remaining / rates[0], None)
