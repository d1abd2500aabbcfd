"""Pruning: deleting what the ledger no longer needs, a short batch at a time.

Four kinds of rows would otherwise grow forever (:class:`PruneKind`). Each prune walks its table in
primary-key order: a page of at most ``batch_size`` prunable keys is read outside any write
transaction, then deleted by one ``DELETE ... WHERE key IN (SELECT key ... LIMIT n)`` confined to
that page's key range, in a transaction of its own. So a prune never holds SQLite's write lock (or
PostgreSQL's row locks) for more than one small batch, and reads each table once per run: the keys
only go forward, whatever rows a batch leaves behind.

Every condition is checked again by the DELETE itself: a row that stopped being prunable between
the read and the delete (a settled message that moved on, say) is kept.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, and_, delete, exists, func, literal, or_, select, tuple_
from wadispatch.ledger.database import Database
from wadispatch.ledger.schema import (
    RUNNING,
    Unindexed,
    campaign_row_errors,
    campaigns,
    dead_letters,
    messages,
    transitions,
    webhook_events,
)
from wadispatch.states import SETTLED, State

#: Statuses of a campaign that has ended for good (the campaign API's ``DONE`` and ``CANCELLED``).
ENDED_CAMPAIGN_STATUSES = ("done", "cancelled")
#: A prune stops after this many batches of one kind (a bound; the next run carries on).
MAX_BATCHES = 100_000


class PruneKind(StrEnum):
    """What a prune deletes."""

    WEBHOOK_EVENTS = "webhook_events"
    """Keys of webhook events received before the cutoff (the record that deduplicates them)."""
    TRANSITIONS = "transitions"
    """The transitions of messages settled (sent, delivered, read, failed) and unchanged since
    before the cutoff. The message rows stay: they hold the outcome."""
    DEAD_LETTERS = "dead_letters"
    """Dead letters replayed before the cutoff (never one still waiting to be replayed)."""
    CAMPAIGN_ERRORS = "campaign_errors"
    """Skipped rows of campaigns that ended (done, cancelled, or running with the whole file read
    and no message left to send) and are unchanged since before the cutoff."""


class Pruning(Database):
    """Batched deletes of rows past their retention."""

    def prune(self, kind: PruneKind, cutoff: datetime, *, batch_size: int) -> int:
        """Delete the rows of ``kind`` that are prunable at ``cutoff``, at most ``batch_size`` per
        transaction; return how many were deleted."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        table, key = _TABLES[kind]
        conditions = _prunable(kind, cutoff)
        deleted = 0
        after: tuple[Any, ...] | None = None
        for _ in range(MAX_BATCHES):
            with self.engine.connect() as conn:
                page = conn.execute(
                    select(*key).where(*conditions, *_beyond(key, after)).order_by(*key).limit(batch_size)
                ).all()
            if not page:
                break
            last = tuple(page[-1])
            batch = select(*key).where(*conditions, *_beyond(key, after), _up_to(key, last)).limit(batch_size)
            with self.begin() as conn:
                deleted += conn.execute(delete(table).where(_key_of(key).in_(batch))).rowcount
            if len(page) < batch_size:
                break
            after = last
        return deleted

    def count_prunable(self, kind: PruneKind, cutoff: datetime) -> int:
        """How many rows of ``kind`` a prune at ``cutoff`` would delete now."""
        table, _ = _TABLES[kind]
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(table).where(*_prunable(kind, cutoff))
            ).scalar_one()


_TABLES: dict[PruneKind, tuple[Table, tuple[Column[Any], ...]]] = {
    PruneKind.WEBHOOK_EVENTS: (webhook_events, (webhook_events.c.provider, webhook_events.c.event_key)),
    PruneKind.TRANSITIONS: (transitions, (transitions.c.id,)),
    PruneKind.DEAD_LETTERS: (dead_letters, (dead_letters.c.id,)),
    PruneKind.CAMPAIGN_ERRORS: (
        campaign_row_errors,
        (campaign_row_errors.c.campaign_id, campaign_row_errors.c.row_number),
    ),
}


def _prunable(kind: PruneKind, cutoff: datetime) -> list[ColumnElement[bool]]:
    """SQL: the rows of ``kind`` past their retention at ``cutoff``."""
    if kind is PruneKind.WEBHOOK_EVENTS:
        return [webhook_events.c.received_at < cutoff]
    if kind is PruneKind.TRANSITIONS:
        # The message is looked up by its key: SQLite must not pick the index on state instead.
        settled_long_ago = (
            select(messages.c.id)
            .where(
                messages.c.id == transitions.c.message_id,
                Unindexed(messages.c.state).in_([state.value for state in SETTLED]),
                messages.c.updated_at < cutoff,
            )
            .exists()
        )
        return [settled_long_ago]
    if kind is PruneKind.DEAD_LETTERS:
        return [dead_letters.c.replayed_at.is_not(None), dead_letters.c.replayed_at < cutoff]
    return [campaign_row_errors.c.campaign_id.in_(_ended_campaigns(cutoff))]


def _ended_campaigns(cutoff: datetime) -> Any:
    """The ids of campaigns that ended and have not changed since before ``cutoff``.

    A running campaign whose file is read and whose messages are all settled has ended too, even
    if nobody asked its progress (which is what marks it ``done``). A paused one has not: it may
    be resumed, and its report then still needs its skipped rows.
    """
    unsettled = exists().where(
        messages.c.campaign_id == campaigns.c.id,
        messages.c.state.in_([State.PENDING.value, State.SENDING.value]),
    )
    finished = and_(campaigns.c.status == RUNNING, campaigns.c.finished_reading_at.is_not(None), ~unsettled)
    return (
        select(campaigns.c.id)
        .where(campaigns.c.updated_at < cutoff)
        .where(or_(campaigns.c.status.in_(ENDED_CAMPAIGN_STATUSES), finished))
        .scalar_subquery()
    )


def _key_of(key: tuple[Column[Any], ...]) -> ColumnElement[Any]:
    return key[0] if len(key) == 1 else tuple_(*key)


def _beyond(key: tuple[Column[Any], ...], after: tuple[Any, ...] | None) -> list[ColumnElement[bool]]:
    """SQL: the key comes after ``after`` (nothing when ``after`` is None), in the key's order."""
    if after is None:
        return []
    if len(key) == 1:
        return [key[0] > after[0]]
    # A row value, not OR/AND: that one the databases read as a range of the key's index.
    return [
        tuple_(*key)
        > tuple_(*(literal(value, column.type) for column, value in zip(key, after, strict=True)))
    ]


def _up_to(key: tuple[Column[Any], ...], last: tuple[Any, ...]) -> ColumnElement[bool]:
    """SQL: the key is ``last`` or comes before it."""
    if len(key) == 1:
        return key[0] <= last[0]
    return tuple_(*key) <= tuple_(
        *(literal(value, column.type) for column, value in zip(key, last, strict=True))
    )
