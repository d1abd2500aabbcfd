"""A campaign's history as its transitions tell it: when it started and settled, and its retries.

One aggregate query over the transitions of the campaign's messages (the ``transitions`` log is
append-only and written with every state change, so it knows what ``messages`` has overwritten):

* **started**: the first claim (``pending → sending``), or the first settle when that came first
  (a message to a window known closed fails without a claim);
* **settled**: moves that end a send: ``sending``/``pending`` → ``sent``/``failed`` (one per message;
  delivery receipts that come later are not counted again);
* **retries**: ``sending → pending`` (the message went back to the queue); of them, **held back**
  are the limiter's (no request left: ``provider_code`` ``throttled``);
* **rate limited**: the provider's own refusals for rate (HTTP 429, or Meta's rate codes): moves
  out of ``sending`` with reason ``rate_limited`` that are not the limiter's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from wadispatch.ledger import Ledger, aware, messages, transitions
from wadispatch.states import THROTTLED, State

RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Timeline:
    """What the transitions of a campaign's messages say (see the module's docstring)."""

    first_claim_at: datetime | None
    first_settle_at: datetime | None
    last_settle_at: datetime | None
    settled: int
    settled_since: int
    """Settled at or after the ``since`` asked for."""
    retries: int
    held_back: int
    rate_limited: int

    @property
    def started_at(self) -> datetime | None:
        """The first claim, or the first settle when that came first (a closed window fails a
        message without a claim)."""
        moments = [moment for moment in (self.first_claim_at, self.first_settle_at) if moment is not None]
        return min(moments, default=None)


def read_timeline(ledger: Ledger, campaign_id: str, since: datetime) -> Timeline:
    """The campaign's :class:`Timeline`, counting settles at or after ``since`` apart."""
    t = transitions.c
    settling = and_(
        t.to_state.in_([State.SENT.value, State.FAILED.value]),
        t.from_state.in_([State.SENDING.value, State.PENDING.value]),
    )
    retry = and_(t.from_state == State.SENDING.value, t.to_state == State.PENDING.value)
    code = func.coalesce(t.detail["provider_code"].as_string(), "")
    throttled = code == THROTTLED
    refused_for_rate = and_(t.from_state == State.SENDING.value, t.reason == RATE_LIMITED, code != THROTTLED)

    def count(condition: object) -> object:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    statement = (
        select(
            func.min(case((t.to_state == State.SENDING.value, t.at))),
            func.min(case((settling, t.at))),
            func.max(case((settling, t.at))),
            count(settling),
            count(and_(settling, t.at >= since)),
            count(retry),
            count(and_(retry, throttled)),
            count(refused_for_rate),
        )
        .select_from(transitions.join(messages, messages.c.id == t.message_id))
        .where(messages.c.campaign_id == campaign_id)
    )
    with ledger.engine.connect() as conn:
        row = conn.execute(statement).one()
    claim, first, last, settled, recent, retries, held_back, rate_limited = row
    return Timeline(
        first_claim_at=aware(claim),
        first_settle_at=aware(first),
        last_settle_at=aware(last),
        settled=int(settled),
        settled_since=int(recent),
        retries=int(retries),
        held_back=int(held_back),
        rate_limited=int(rate_limited),
    )


#: A timeline is read again at once when its query took less than this (seconds)...
CHEAP_SECONDS = 0.1
#: ...else it is reused for this many times the query's duration: a page polling a campaign of
#: millions of messages every 2 s spends at most a fifth of its time on this query.
REUSE_FACTOR = 4.0
CACHED_CAMPAIGNS = 256

_cache: dict[tuple[str, str], tuple[Timeline, float, float, bool]] = {}
_cache_lock = threading.Lock()


def cached_timeline(ledger: Ledger, campaign_id: str, since: datetime, *, finished: bool) -> Timeline:
    """:func:`read_timeline`, reused in this process when its query is slow and the last read is
    recent (see :data:`REUSE_FACTOR`), or for good once the campaign was finished when read (no
    message of a finished campaign moves out of ``pending`` or ``sending`` again). The first read
    of a finished campaign is always made, so that it has the end."""
    key = (str(ledger.engine.url), campaign_id)
    with _cache_lock:
        entry = _cache.get(key)
    if entry is not None:
        timeline, read_at, cost, was_finished = entry
        fresh = cost >= CHEAP_SECONDS and time.monotonic() - read_at < cost * REUSE_FACTOR
        # The first read after the end is always made: it has the last settle.
        if was_finished if finished else fresh:
            return timeline
    started = time.monotonic()
    timeline = read_timeline(ledger, campaign_id, since)
    now = time.monotonic()
    with _cache_lock:
        if len(_cache) >= CACHED_CAMPAIGNS and key not in _cache:
            _cache.pop(next(iter(_cache)))  # the oldest entry
        _cache[key] = (timeline, now, now - started, finished)
    return timeline
