"""Messages to try again later, and how they are grouped into delayed jobs. Pure: no I/O.

The engine says which messages come back and when (:class:`Later`); the tasks publish them
(:func:`wadispatch.publishing.publish_later`) or, in eager mode, sleep.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

LaterReason = Literal["retry", "deferred", "not_due"]


@dataclass(frozen=True)
class Later:
    """A message to try again in ``delay`` seconds, and why (secret- and phone-free)."""

    message_id: str
    delay: float
    reason: LaterReason
    description: str


def group_later(later: list[Later], max_ids: int, spread: float = 0.5) -> list[tuple[float, list[str]]]:
    """Group messages to try again into jobs: ``(countdown, ids)``, delays within ``spread`` s.

    Retries (and messages not due yet) come back at their group's longest delay, so none comes
    back before its time (a provider's ``Retry-After``). Messages the limiter deferred come back
    ``spread`` before their group's earliest slot: the limiter paces them again anyway, and
    arriving early keeps the sender's slots in use instead of leaving gaps.
    """
    buckets: dict[tuple[bool, int], list[Later]] = defaultdict(list)
    for item in later:
        buckets[(item.reason == "deferred", int(item.delay // spread))].append(item)
    jobs: list[tuple[float, list[str]]] = []
    for (deferred, _), items in sorted(buckets.items(), key=lambda bucket: bucket[0][1]):
        for start in range(0, len(items), max_ids):
            chunk = items[start : start + max_ids]
            delays = [item.delay for item in chunk]
            countdown = max(0.0, min(delays) - spread) if deferred else max(delays)
            jobs.append((countdown, [item.message_id for item in chunk]))
    return jobs
