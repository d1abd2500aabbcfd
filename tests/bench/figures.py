"""Pure arithmetic on measurements: rates, windows, percentiles, ratios, CPU time of processes."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path


def rate(count: int, seconds: float | None) -> float | None:
    """``count / seconds``, or None when there is no time to divide by."""
    if seconds is None or seconds <= 0:
        return None
    return count / seconds


def observed_rate(times: Sequence[float]) -> float | None:
    """Events per second between the first and the last of ``times``: ``(n - 1) / span``.

    ``n`` events span ``n - 1`` intervals, so a sender paced at exactly 50/s scores 50.0 whatever
    ``n``. None for fewer than two events.
    """
    if len(times) < 2:
        return None
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else None


def max_in_window(times: Iterable[float], seconds: float = 1.0) -> int:
    """The most events in any window of ``seconds`` (closed at its start, open at its end)."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (``q`` in 0-100); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Iterable[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count); None for none."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process and its living descendants (Linux ``/proc``), else None.

    Children that already exited count only once reaped (``cutime``/``cstime``); a worker's pool
    children live as long as the worker, so a delta over a run is its CPU for that run.
    """
    total = 0.0
    seen: set[int] = set()
    pending = [pid]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
        except OSError:
            if current == pid:
                return None
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(value) for value in fields[11:15]) / _TICKS  # utime stime cutime cstime
        pending.extend(_children(current))
    return total


def box_cpu_seconds() -> float | None:
    """CPU time the whole machine spent busy (every core, every process: ``/proc/stat``), else None.

    A run's delta counts the workers, Redis, the database server, the simulator and the load
    generator alike: the cost of a message wherever it is paid.
    """
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return children
