"""Sliding-window counters: throughput limits, and the highest rate each key ever reached.

A window keeps the times of the events inside it (a deque pruned from the left), so its length is
the exact count over the last ``seconds``. The maximum length ever seen is the highest rate over
any window of that size, because every window's count is at most the count of the window that ends
at its last event.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable

_SWEEP_MIN = 4096


class SlidingWindows:
    """One sliding window per key, of ``seconds`` each; not thread-safe (one event loop)."""

    __slots__ = ("_events", "_max", "_sweep_at", "seconds")

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self._events: dict[Hashable, deque[float]] = {}
        self._max: dict[Hashable, int] = {}
        self._sweep_at = _SWEEP_MIN

    def _pruned(self, key: Hashable, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self._sweep_at:
                self._sweep(now)
            events = self._events[key] = deque()
        else:
            horizon = now - self.seconds
            while events and events[0] <= horizon:
                events.popleft()
        return events

    def wait(self, key: Hashable, limit: int | None, now: float) -> float:
        """0 when one more event fits under ``limit`` now; else the seconds until one does.

        A limit of 0 or None never waits. Nothing is recorded.
        """
        if not limit:
            return 0.0
        events = self._pruned(key, now)
        if len(events) < limit:
            return 0.0
        return max(events[-limit] + self.seconds - now, 1e-3)

    def record(self, key: Hashable, now: float) -> int:
        """Count one event at ``now``; return the count in the window that ends here."""
        events = self._pruned(key, now)
        events.append(now)
        count = len(events)
        if count > self._max.get(key, 0):
            self._max[key] = count
        return count

    def _sweep(self, now: float) -> None:
        # Many keys (one per recipient for pair limits): drop those with nothing in the window.
        horizon = now - self.seconds
        self._events = {k: v for k, v in self._events.items() if v and v[-1] > horizon}
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._events))

    def max_counts(self) -> dict[Hashable, int]:
        """The highest count each key reached in any window."""
        return dict(self._max)

    def clear(self) -> None:
        """Forget every event and maximum."""
        self._events.clear()
        self._max.clear()
        self._sweep_at = _SWEEP_MIN


def retry_after_seconds(wait: float) -> int:
    """A ``Retry-After`` value in whole seconds (HTTP's form), at least 1."""
    return max(1, math.ceil(wait))
