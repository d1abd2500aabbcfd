"""The campaigns' ledger I/O: campaigns, their messages in batches, skipped rows, suppressions,
the sticky senders of pool campaigns.

Everything a campaign writes goes through here, on the ledger's engine and tables
(:mod:`wadispatch.ledger`). A batch of rows is one transaction: its messages, their ``pending``
transitions, its skipped rows and the campaign's counts are written together or not at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, exists, func, insert, or_, select, text, update
from wadispatch.ledger import (
    SUPPRESS_ALL_SENDERS,
    Ledger,
    aware,
    campaign_row_errors,
    campaigns,
    messages,
    sender_assignments,
    suppressions,
    utcnow,
    writer,
)
from wadispatch.ledger.optouts import add_suppressions
from wadispatch.ledger.schema import (
    Unindexed,
    campaign_allows_sending,
    campaign_recipient_suppressed,
    in_state,
)
from wadispatch.states import State
from wadispatch.templates import SENT_AS_TEMPLATE

log = logging.getLogger("wadispatch.campaigns")

ACTIVE_STATES = (State.PENDING.value, State.SENDING.value)
SQLITE_CACHE_KIB = 16 * 1024
"""SQLite's page cache on a connection that records campaign batches (its default is 2 MB).

A batch inserts into indexes keyed by random ids (the messages' and the transitions'), so it
touches pages all over them: with the default cache most of those pages are read again, from the
file, by every batch. The connection keeps the size (and the pages, up to this much) in the pool.
"""


@dataclass(frozen=True)
class CampaignRecord:
    """One row of the campaigns table."""

    id: str
    name: str
    provider: str
    sender: str | None
    source: str | None
    template: dict[str, Any]
    status: str
    rows_read: int
    accepted: int
    invalid: int
    duplicate: int
    suppressed: int
    finished_reading_at: datetime | None
    created_at: datetime
    updated_at: datetime
    fallback: dict[str, Any] | None = None
    """The fallback template, placeholders unfilled (``None``: none)."""
    senders: tuple[str, ...] | None = None
    """The pool of a campaign sent from several senders (``sender`` is the first); None otherwise."""
    start_at: datetime | None = None
    send_window: str | None = None
    """``HH:MM-HH:MM`` in each recipient's time zone (or ``time_zone``)."""
    time_zone: str | None = None
    """The zone forced for every recipient; ``None``: each recipient's from the phone number."""
    valid_for_seconds: int | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Skipped:
    """A row of the file that was not accepted, and why."""

    row_number: int
    kind: str
    """``invalid``, ``duplicate`` or ``suppressed``."""
    reason: str
    recipient: str | None = None


@dataclass(frozen=True)
class SuppressionRecord:
    sender: str | None
    recipient: str
    reason: str | None
    source: str
    created_at: datetime


def insert_campaign(ledger: Ledger, values: dict[str, Any]) -> None:
    with ledger.begin() as conn:
        conn.execute(insert(campaigns), values)


AssignSenders = Callable[[Connection, list[dict[str, Any]]], None]
"""Sets the ``sender`` (and ``request``) of a pool campaign's message rows, in the batch's transaction."""


def add_batch(
    ledger: Ledger,
    campaign_id: str,
    sender: str | Sequence[str] | None,
    rows: list[dict[str, Any]],
    skipped: list[Skipped],
    rows_read: int,
    campaign: dict[str, Any] | None = None,
    assign: AssignSenders | None = None,
) -> tuple[int, int, int]:
    """Record one batch of a campaign's rows; ``(accepted, duplicate, suppressed)``.

    ``campaign``, given with the first batch, is the campaign's own row, inserted in the same
    transaction: a campaign exists only once its first rows do. ``sender`` is a pool's senders
    for a pool campaign (a number suppressed for any of them is skipped), and ``assign`` then
    picks each new message's sender (:mod:`wadispatch.campaigns.assignments`).

    ``rows`` are message rows (:meth:`wadispatch.campaigns.ingest.Target.message_row`). Those whose
    recipient is suppressed, or already has a message in this campaign (an earlier row), are not
    inserted but recorded as skipped rows, like the ``skipped`` given.
    """
    now = utcnow()
    skipped = list(skipped)
    with ledger.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        if campaign is not None:
            conn.execute(insert(campaigns), campaign)
        blocked = _suppressed(conn, sender, {row["recipient"] for row in rows})
        first_rows: dict[str, int] = {}
        fresh: list[dict[str, Any]] = []
        for row in rows:
            recipient = row["recipient"]
            if recipient in blocked:
                reason = "on the suppression list"
                skipped.append(Skipped(row["campaign_row"], "suppressed", reason, recipient))
            elif recipient in first_rows:
                reason = f"same number as row {first_rows[recipient]}"
                skipped.append(Skipped(row["campaign_row"], "duplicate", reason, recipient))
            else:
                first_rows[recipient] = row["campaign_row"]
                fresh.append(row)
        if assign is not None and fresh:
            assign(conn, fresh)
        inserted = _insert_pending(conn, campaign_id, fresh, now) if fresh else set()
        earlier = [row for row in fresh if row["id"] not in inserted]
        if earlier:  # numbers an earlier batch already had
            known = _rows_of(conn, campaign_id, {row["recipient"] for row in earlier})
            skipped += [
                Skipped(
                    row["campaign_row"],
                    "duplicate",
                    f"same number as row {known.get(row['recipient'], '?')}",
                    row["recipient"],
                )
                for row in earlier
            ]
        if skipped:
            conn.execute(
                insert(campaign_row_errors),
                [
                    {
                        "campaign_id": campaign_id,
                        "row_number": item.row_number,
                        "kind": item.kind,
                        "recipient": (item.recipient or "")[:64] or None,
                        "reason": item.reason,
                    }
                    for item in skipped
                ],
            )
        kinds = [item.kind for item in skipped]
        counts = (len(inserted), kinds.count("duplicate"), kinds.count("suppressed"))
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(
                rows_read=campaigns.c.rows_read + rows_read,
                accepted=campaigns.c.accepted + counts[0],
                invalid=campaigns.c.invalid + kinds.count("invalid"),
                duplicate=campaigns.c.duplicate + counts[1],
                suppressed=campaigns.c.suppressed + counts[2],
                updated_at=now,
            )
        )
    return counts


_MESSAGE_COLUMNS = (
    "id",
    "provider",
    "sender",
    "recipient",
    "request",
    "created_at",
    "updated_at",
    "campaign_id",
    "campaign_row",
    "fallback",
    "expires_at",
    "held_until",
)


def _insert_pending(
    conn: Connection, campaign_id: str, rows: list[dict[str, Any]], now: datetime
) -> set[str]:
    """Insert the messages whose number the campaign does not have yet, each with its ``pending``
    transition (through the ledger's writer, in bulk); return their ids.

    The values shared by the batch (``now``, the campaign's expiry) are converted for the driver
    once; the requests are JSON text already. The unique index on ``(campaign_id, recipient)``
    skips a number the campaign already has.
    """
    stamp = writer.bound(conn, messages.c.created_at, now)
    expiry = writer.bound(conn, messages.c.expires_at, rows[0].get("expires_at")) if rows else None
    held = [row.get("held_until") for row in rows]
    if any(held):
        held = [writer.bound(conn, messages.c.held_until, until) for until in held]
    values = [
        (
            row["id"],
            row["provider"],
            row["sender"],
            row["recipient"],
            row["request"],
            stamp,
            stamp,
            campaign_id,
            row["campaign_row"],
            row.get("fallback"),
            expiry,
            until,
        )
        for row, until in zip(rows, held, strict=True)
    ]
    return writer.insert_pending_bulk(
        conn, _MESSAGE_COLUMNS, values, stamp, unique=("campaign_id", "recipient")
    )


def _suppressed(conn: Connection, sender: str | Sequence[str] | None, recipients: set[str]) -> set[str]:
    """Which of ``recipients`` are on the suppression list of ``sender`` (any of a pool's senders)
    or of every sender."""
    if not recipients:
        return set()
    pool = [sender or SUPPRESS_ALL_SENDERS] if sender is None or isinstance(sender, str) else list(sender)
    names = {f"sender{index}": name for index, name in enumerate([SUPPRESS_ALL_SENDERS, *pool])}
    condition, value = _recipients_in(conn, "recipient")
    if condition is None:
        found = conn.execute(
            select(suppressions.c.recipient).where(
                suppressions.c.recipient.in_(recipients), suppressions.c.sender.in_(list(names.values()))
            )
        )
    else:
        senders_in = ", ".join(f":{key}" for key in names)
        query = text(
            f"SELECT recipient FROM {suppressions.name} WHERE sender IN ({senders_in}) AND {condition}"
        )
        found = conn.execute(query, {**names, "recipients": value(recipients)})
    return set(found.scalars())


def _recipients_in(conn: Connection, column: str) -> tuple[str | None, Callable[[Iterable[str]], Any]]:
    """An SQL condition ``column`` in the bound list ``:recipients``, and how to bind that list.

    The numbers go to the database as one value (a JSON array on SQLite, an array on
    PostgreSQL), not as a bound parameter each; ``(None, list)`` on other databases (use
    ``column.in_(...)`` there).
    """
    if conn.dialect.name == "sqlite":
        return f"{column} IN (SELECT value FROM json_each(:recipients))", _json_list
    if conn.dialect.name == "postgresql":
        return f"{column} = ANY(:recipients)", list
    return None, list


def _json_list(items: Iterable[str]) -> str:
    return json.dumps(list(items))


def sticky_senders(conn: Connection, provider: str, recipients: list[str]) -> dict[str, str]:
    """The recorded sender of each of these recipients that has one."""
    table = sender_assignments
    if conn.dialect.name == "postgresql":
        # Planned for each batch, never prepared: psycopg prepares a statement run five times, and
        # PostgreSQL may then keep a generic plan made while the table was small (it grows from
        # nothing as a campaign is read), one that scans the whole table and compares each row
        # with every number of the batch (seconds a batch at 100,000 rows).
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(
                f"SELECT recipient, sender FROM {table.name} WHERE provider = %s AND recipient = ANY(%s)",
                (provider, recipients),
                prepare=False,
            )
            return dict(cursor.fetchall())
        finally:
            cursor.close()
    condition, value = _recipients_in(conn, "recipient")
    if condition is None:
        query = select(table.c.recipient, table.c.sender).where(
            table.c.provider == provider, table.c.recipient.in_(recipients)
        )
        return {recipient: sender for recipient, sender in conn.execute(query)}
    query = text(f"SELECT recipient, sender FROM {table.name} WHERE provider = :provider AND {condition}")
    found = conn.execute(query, {"provider": provider, "recipients": value(recipients)})
    return {recipient: sender for recipient, sender in found}


def record_senders(conn: Connection, provider: str, pairs: list[tuple[str, str]]) -> None:
    """Record ``(recipient, sender)`` pairs as the recipients' senders, in one statement.

    The pairs go to the database as one value (JSON on SQLite, arrays on PostgreSQL), as the
    batch's recipients do for the look-up: a row of parameters each costs more than the rest.
    """
    table = sender_assignments
    # In key order: two campaigns upserting overlapping recipients then lock them in one order
    # (no deadlock on PostgreSQL).
    pairs = sorted(pairs)
    conflict = (
        "ON CONFLICT (provider, recipient) DO UPDATE SET sender = excluded.sender, "
        "assigned_at = excluded.assigned_at"
    )
    stamp = bindparam("at", utcnow(), type_=table.c.assigned_at.type)
    if conn.dialect.name == "postgresql":
        query = text(
            f"INSERT INTO {table.name} (provider, recipient, sender, assigned_at) "
            "SELECT :provider, recipient, sender, :at "
            f"FROM unnest(CAST(:recipients AS text[]), CAST(:senders AS text[])) AS pairs(recipient, sender) "
            + conflict
        ).bindparams(stamp)
        recipients, senders = zip(*pairs, strict=True)
        conn.execute(query, {"provider": provider, "recipients": list(recipients), "senders": list(senders)})
    else:
        # WHERE true: SQLite's parser needs it between a SELECT and its ON CONFLICT.
        query = text(
            f"INSERT INTO {table.name} (provider, recipient, sender, assigned_at) "
            "SELECT :provider, json_extract(value, '$[0]'), json_extract(value, '$[1]'), :at "
            f"FROM json_each(:pairs) WHERE true {conflict}"
        ).bindparams(stamp)
        conn.execute(query, {"provider": provider, "pairs": json.dumps(pairs)})


def _rows_of(conn: Connection, campaign_id: str, recipients: set[str]) -> dict[str, int]:
    found = conn.execute(
        select(messages.c.recipient, messages.c.campaign_row).where(
            messages.c.campaign_id == campaign_id, messages.c.recipient.in_(recipients)
        )
    ).all()
    return {recipient: row for recipient, row in found}


def finish_reading(ledger: Ledger, campaign_id: str) -> None:
    """Mark the campaign's file as read; on PostgreSQL, refresh the planner's view of the tables.

    After a bulk load the statistics lag far behind (a campaign of a million rows may be planned
    as a few dozen), and the campaign's progress, report and cancel queries would be planned on
    that; ``ANALYZE`` samples a fixed number of rows, so it takes well under a second.
    """
    now = utcnow()
    with ledger.begin() as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(finished_reading_at=now, updated_at=now)
        )
    ledger.analyze_messages()


def get_campaign(ledger: Ledger, campaign_id: str) -> CampaignRecord | None:
    with ledger.engine.connect() as conn:
        row = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).one_or_none()
    return None if row is None else _campaign(row)


def list_campaigns(ledger: Ledger, limit: int = 100) -> list[CampaignRecord]:
    """The latest campaigns first."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.id).limit(limit)
        ).all()
    return [_campaign(row) for row in rows]


def set_status(ledger: Ledger, campaign_id: str, from_statuses: Iterable[str], to_status: str) -> bool:
    """Move the campaign to ``to_status`` if it is in one of ``from_statuses``; whether it moved."""
    with ledger.begin() as conn:
        changed = conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.status.in_(list(from_statuses)))
            .values(status=to_status, updated_at=utcnow())
        ).rowcount
    return changed == 1


def fail_pending(ledger: Ledger, campaign_id: str, reason: str, batch_size: int = 1000) -> int:
    """Move every ``pending`` message of the campaign to ``failed`` with ``reason``; how many moved.

    In batches, through the ledger's writer; a message that another process moved meanwhile is
    left alone (the move is conditional on ``pending``).
    """
    pending = and_(messages.c.campaign_id == campaign_id, messages.c.state == State.PENDING.value)
    with ledger.engine.connect() as conn:  # most calls find none: no write lock for them
        if conn.execute(select(messages.c.id).where(pending).limit(1)).first() is None:
            return 0
    total = 0
    while True:
        now = utcnow()
        with ledger.begin() as conn:
            ids = list(
                conn.execute(
                    select(messages.c.id)
                    .where(messages.c.campaign_id == campaign_id, messages.c.state == State.PENDING.value)
                    .limit(batch_size)
                ).scalars()
            )
            if not ids:
                return total
            moved = writer.move(
                conn,
                ids,
                State.PENDING,
                State.FAILED,
                now=now,
                reason=reason,
                values={"next_attempt_at": None},
            )
        total += len(moved)


def pending_by_status(ledger: Ledger, status: str) -> dict[str, int]:
    """How many ``pending`` messages each campaign in ``status`` has (those with none are left out)."""
    in_status = select(campaigns.c.id).where(campaigns.c.status == status).scalar_subquery()
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.campaign_id, func.count())
            .where(messages.c.state == State.PENDING.value, messages.c.campaign_id.in_(in_status))
            .group_by(messages.c.campaign_id)
        ).all()
    return {campaign_id: count for campaign_id, count in rows}


def pending_pages(
    ledger: Ledger, campaign_id: str, first_row: int, last_row: int | None, page_size: int
) -> Iterator[list[str]]:
    """The ids of the campaign's ``pending`` messages in rows ``first_row..last_row``, ``page_size``
    rows of the file at a time (a page may hold fewer ids, or none).

    Each page is one query bounded by its rows on the ``(campaign_id, campaign_row)`` index, so
    its cost does not grow with the campaign, whatever plan the database picks.
    """
    if last_row is None:
        with ledger.engine.connect() as conn:
            last_row = conn.execute(
                select(func.max(messages.c.campaign_row)).where(messages.c.campaign_id == campaign_id)
            ).scalar_one_or_none()
        if last_row is None:
            return
    for start in range(first_row, last_row + 1, page_size):
        with ledger.engine.connect() as conn:
            ids = conn.execute(
                select(messages.c.id)
                .where(
                    messages.c.campaign_id == campaign_id,
                    messages.c.campaign_row.between(start, min(last_row, start + page_size - 1)),
                    messages.c.state == State.PENDING.value,
                    # A held message gets its job when its time comes (the release), not before.
                    messages.c.held_until.is_(None),
                )
                .order_by(messages.c.campaign_row)
            ).scalars()
            page = list(ids)
        if page:
            yield page


def _keyset_pages(
    ledger: Ledger, statement: Any, key: Any, after: int, page_size: int
) -> Iterator[list[Any]]:
    """The rows of ``statement`` with ``key > after``, in ``key`` order, one indexed query a page."""
    while True:
        with ledger.engine.connect() as conn:
            rows = conn.execute(statement.where(key > after).order_by(key).limit(page_size)).all()
        if not rows:
            return
        after = getattr(rows[-1], key.name)
        yield rows


def campaign_figures(ledger: Ledger) -> tuple[dict[str, int], dict[str, int]]:
    """Campaigns by status, and the messages of the running and paused ones by state."""
    with ledger.engine.connect() as conn:
        statuses = conn.execute(select(campaigns.c.status, func.count()).group_by(campaigns.c.status)).all()
        states = conn.execute(
            select(messages.c.state, func.count())
            .select_from(messages.join(campaigns, messages.c.campaign_id == campaigns.c.id))
            .where(campaigns.c.status.in_(("running", "paused")))
            .group_by(messages.c.state)
        ).all()
    return {status: count for status, count in statuses}, {state: count for state, count in states}


def state_counts(ledger: Ledger, campaign_id: str) -> dict[tuple[str | None, str, str | None], int]:
    """How many of the campaign's messages each sender has in each (state, reason)."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.sender, messages.c.state, messages.c.reason, func.count())
            .where(messages.c.campaign_id == campaign_id)
            .group_by(messages.c.sender, messages.c.state, messages.c.reason)
        ).all()
    return {(sender, state, reason): count for sender, state, reason, count in rows}


def sent_as_template(ledger: Ledger, campaign_id: str) -> int:
    """How many of the campaign's messages went as their fallback template (accepted)."""
    accepted = (State.SENT.value, State.DELIVERED.value, State.READ.value)
    with ledger.engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(
                messages.c.campaign_id == campaign_id,
                messages.c.sent_as == SENT_AS_TEMPLATE,
                messages.c.state.in_(accepted),
            )
        ).scalar_one()


def message_pages(ledger: Ledger, campaign_id: str, page_size: int = 5000) -> Iterator[list[Any]]:
    """The campaign's messages in row order, a page at a time (keyset on the row)."""
    columns = [
        messages.c.campaign_row,
        messages.c.recipient,
        messages.c.sender,
        messages.c.id,
        messages.c.state,
        messages.c.reason,
        messages.c.provider_message_id,
        messages.c.provider_error_code,
        messages.c.attempts,
        messages.c.created_at,
        messages.c.updated_at,
        messages.c.reply_id,
        messages.c.reply_title,
        messages.c.replied_at,
        messages.c.sent_as,
    ]
    statement = select(*columns).where(messages.c.campaign_id == campaign_id)
    yield from _keyset_pages(ledger, statement, messages.c.campaign_row, 0, page_size)


def skipped_pages(ledger: Ledger, campaign_id: str, page_size: int = 5000) -> Iterator[list[Skipped]]:
    """The campaign's skipped rows in row order, a page at a time."""
    statement = select(campaign_row_errors).where(campaign_row_errors.c.campaign_id == campaign_id)
    for rows in _keyset_pages(ledger, statement, campaign_row_errors.c.row_number, 0, page_size):
        yield [Skipped(row.row_number, row.kind, row.reason, row.recipient) for row in rows]


# --- suppressions ----------------------------------------------------------------------------------


def suppress(
    ledger: Ledger, pairs: Iterable[tuple[str | None, str]], *, reason: str | None, source: str
) -> int:
    """Add ``(sender or None for all senders, recipient)`` pairs; how many were new."""
    with ledger.begin() as conn:
        return add_suppressions(conn, pairs, reason=reason, source=source, now=utcnow())


#: The reason of a campaign message stopped because its number went on the suppression list
#: after it was queued.
SUPPRESSED_REASON = "suppressed"
#: Campaign statuses whose messages are all settled (a cancelled campaign fails its own).
_ENDED = ("done", "cancelled")


@dataclass(frozen=True)
class OptOut:
    """What an opt-out did: suppression entries added, and the queued messages it stopped."""

    added: int
    stopped: list[str]


def opt_out(
    ledger: Ledger,
    names: list[str],
    *,
    provider: str,
    sender: str | None,
    reason: str,
    source: str,
    detail: dict[str, Any] | None = None,
) -> OptOut:
    """Put one person (every name they go by: phone number, user id) on the suppression list of
    ``sender`` (``None``: of every sender) and, in the same transaction, fail every ``pending``
    message of a campaign not ended to any of those names (from ``sender`` of ``provider``;
    ``None``: from any sender) with reason ``suppressed``, in one statement.

    A message claimed meanwhile is in flight and goes; one claimed after this commits cannot:
    the claim checks the list (:func:`~wadispatch.ledger.schema.campaign_recipient_not_suppressed`).
    """
    now = utcnow()
    with ledger.begin() as conn:
        pairs = [(sender, name) for name in names]
        added = add_suppressions(conn, pairs, reason=reason, source=source, now=now)
        live = list(conn.execute(select(campaigns.c.id).where(campaigns.c.status.not_in(_ENDED))).scalars())
        if not live:
            return OptOut(added, [])
        # (campaign, recipient) pairs on the campaigns' unique index: a few rows, however large
        # the campaigns; the sender's own columns only filter them.
        where = [messages.c.campaign_id.in_(live), messages.c.recipient.in_(names)]
        if sender is not None:
            where += [Unindexed(messages.c.provider) == provider, Unindexed(messages.c.sender) == sender]
        moved = writer.move_where(
            conn,
            where,
            State.PENDING,
            State.FAILED,
            now=now,
            reason=SUPPRESSED_REASON,
            detail=detail,
            values={"next_attempt_at": None},
        )
    return OptOut(added, [item.message_id for item in moved])


def fail_suppressed(ledger: Ledger, message_ids: list[str]) -> list[str]:
    """Fail those of these ``pending`` campaign messages whose recipient is on the suppression
    list (reason ``suppressed``): the ones a claim refused for that; return their ids."""
    if not message_ids:
        return []
    suppressed = and_(messages.c.id.in_(message_ids), campaign_recipient_suppressed())
    # Most calls are for a paused campaign's messages and find none: no write lock for them.
    with ledger.engine.connect() as conn:
        found = list(conn.execute(select(messages.c.id).where(suppressed)).scalars())
    if not found:
        return []
    with ledger.begin() as conn:
        moved = writer.move(
            conn,
            found,
            State.PENDING,
            State.FAILED,
            now=utcnow(),
            where=[campaign_recipient_suppressed()],
            reason=SUPPRESSED_REASON,
            detail={"checked": "claim"},
            values={"next_attempt_at": None},
        )
    return [item.message_id for item in moved]


def suppressed_by_keyword(ledger: Ledger, campaign_id: str) -> int:
    """How many of the campaign's messages failed ``suppressed`` with their recipient on the
    list by an opt-out keyword (of their sender or of every sender)."""
    keyword = select(suppressions.c.id).where(
        suppressions.c.source == "keyword",
        suppressions.c.recipient == messages.c.recipient,
        (suppressions.c.sender == messages.c.sender) | (suppressions.c.sender == SUPPRESS_ALL_SENDERS),
    )
    with ledger.engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(messages)
            .where(
                messages.c.campaign_id == campaign_id,
                # by the campaign's index (one on the state would read every failed message)
                in_state(State.FAILED, by_id=True),
                Unindexed(messages.c.reason) == SUPPRESSED_REASON,
                exists(keyword),
            )
        ).scalar_one()


def unsuppress(ledger: Ledger, recipient: str, sender: str | None) -> int:
    """Remove one suppression (``sender`` None: the all-senders one); how many rows went."""
    with ledger.begin() as conn:
        return conn.execute(
            delete(suppressions).where(
                suppressions.c.recipient == recipient,
                suppressions.c.sender == (sender or SUPPRESS_ALL_SENDERS),
            )
        ).rowcount


def list_suppressions(
    ledger: Ledger, *, recipient: str | None = None, sender: str | None = None, limit: int = 1000
) -> list[SuppressionRecord]:
    conditions = []
    if recipient is not None:
        conditions.append(suppressions.c.recipient == recipient)
    if sender is not None:
        conditions.append(or_(suppressions.c.sender == sender, suppressions.c.sender == SUPPRESS_ALL_SENDERS))
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(suppressions)
            .where(and_(True, *conditions))
            .order_by(suppressions.c.created_at.desc(), suppressions.c.id.desc())
            .limit(limit)
        ).all()
    return [
        SuppressionRecord(
            sender=row.sender or None,
            recipient=row.recipient,
            reason=row.reason,
            source=row.source,
            created_at=aware(row.created_at),
        )
        for row in rows
    ]


def _campaign(row: Any) -> CampaignRecord:
    return CampaignRecord(
        id=row.id,
        name=row.name,
        provider=row.provider,
        sender=row.sender,
        source=row.source,
        template=row.template,
        status=row.status,
        rows_read=row.rows_read,
        accepted=row.accepted,
        invalid=row.invalid,
        duplicate=row.duplicate,
        suppressed=row.suppressed,
        finished_reading_at=aware(row.finished_reading_at),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        fallback=row.fallback,
        senders=tuple(row.senders) if row.senders else None,
        start_at=aware(row.start_at),
        send_window=row.send_window,
        time_zone=row.time_zone,
        valid_for_seconds=row.valid_for_seconds,
        expires_at=aware(row.expires_at),
    )


# --- held messages: a campaign's start time and send windows ---------------------------------------


def release_held(ledger: Ledger, now: datetime, limit: int) -> list[str]:
    """Clear ``held_until`` of up to ``limit`` pending messages held until ``now`` or before, in
    running campaigns, in one atomic UPDATE; return their ids (their jobs are the caller's to
    publish: should that fail, they are pending, not held, and the reconciler republishes them)."""
    # Found through ix_messages_held_until alone (state and campaign checked on the rows found):
    # the pending messages may be millions, the held ones due now a few.
    due = (
        select(messages.c.id)
        .where(
            messages.c.held_until <= now,
            in_state(State.PENDING, by_id=True),
            messages.c.campaign_id.is_not(None),
            campaign_allows_sending(by_id=True),
        )
        .limit(limit)
    )
    with ledger.begin() as conn:
        return list(
            conn.execute(
                update(messages)
                .where(messages.c.id.in_(due.scalar_subquery()))
                .values(held_until=None, updated_at=now)
                .returning(messages.c.id)
            ).scalars()
        )


def held_summary(ledger: Ledger, campaign_id: str) -> tuple[int, datetime | None]:
    """How many of the campaign's pending messages are held, and the earliest release."""
    with ledger.engine.connect() as conn:
        count, earliest = conn.execute(
            select(func.count(), func.min(messages.c.held_until)).where(
                messages.c.campaign_id == campaign_id,
                messages.c.state == State.PENDING.value,
                messages.c.held_until.is_not(None),
            )
        ).one()
    return count, aware(earliest)
