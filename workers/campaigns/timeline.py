"""A campaign's history as its transitions tell it: when it started and settled, and its retries.

One aggregate query over the transitions of the campaign's messages (the ``transitions`` log is
append-only and written with every state change, so it knows what ``messages`` has overwritten):

* **started**: the first claim (``pending → sending``), or the first settle when nothing was ever
  claimed (a campaign whose windows were all known closed);
* **settled**: moves that end a send: ``sending``/``pending`` → ``sent``/``failed`` (one per message;
  delivery receipts that come later are not counted again);
* **retries**: ``sending → pending`` (the message went back to the queue); of them, **held back**
  are the limiter's (no request left: ``provider_code`` ``throttled``);
* **rate limited**: the provider's own refusals for rate (HTTP 429, or Meta's rate codes): moves
  out of ``sending`` with reason ``rate_limited`` that are not the limiter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from wadispatch.ledger import Ledger, aware, messages, transitions
from wadispatch.states import State

#: The engine's mark on a message the limiter held back without a request (wadispatch.engine).
THROTTLED = "throttled"
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
        return self.first_claim_at or self.first_settle_at


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
