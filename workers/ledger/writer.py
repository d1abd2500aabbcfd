"""The one writer of message states: every state change of the product goes through here.

Each function checks the state machine (:func:`wadispatch.states.check_transition`) before it
writes, changes a message only if it is still in the state the caller expected (a conditional
UPDATE), and appends the transitions rows in the caller's transaction. Nothing else in the
product inserts into ``transitions`` or sets ``messages.state`` or ``messages.attempts``; a test
checks that. The functions take an open connection so that callers compose them with their own
writes into one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from wadispatch.ledger.records import Change
from wadispatch.ledger.schema import in_state, messages, transitions
from wadispatch.states import State, check_transition
from wadispatch.templates import SENT_AS_TEMPLATE

#: Message columns a transition may set besides state, reason and updated_at.
TRANSITION_FIELDS = frozenset(
    {
        "next_attempt_at",
        "requested_at",
        "provider_message_id",
        "provider_error_code",
        "provider_error_message",
        "sent_as",
    }
)


@dataclass(frozen=True)
class Moved:
    """A message a conditional move changed, and its attempt count after the move."""

    message_id: str
    attempt: int


def insert_pending(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """Insert new messages as ``pending`` (no attempt yet) with their first transitions.

    ``rows`` are messages rows without ``state`` and ``attempts``.
    """
    check_transition(None, State.PENDING, None)
    if not rows:
        return
    conn.execute(insert(messages), [{**row, "state": State.PENDING.value, "attempts": 0} for row in rows])
    conn.execute(insert(transitions), [_first_transition(row["id"], now) for row in rows])


#: The columns :func:`insert_pending_one` writes, in its statements' order.
PENDING_COLUMNS = (
    "id",
    "provider",
    "sender",
    "recipient",
    "conversation_id",
    "request",
    "idempotency_key",
    "fallback",
    "expires_at",
    "created_at",
    "updated_at",
    "state",
    "attempts",
)
_NEW_MESSAGE = "INSERT INTO {messages} ({names}) VALUES ({marks})".format(
    messages=messages.name,
    names=", ".join(f'"{name}"' for name in PENDING_COLUMNS),
    marks=", ".join("{mark}" for _ in PENDING_COLUMNS),
)
_FIRST_TRANSITION = (
    f"INSERT INTO {transitions.name} (message_id, to_state, at, attempt) "
    f"VALUES ({{mark}}, '{State.PENDING.value}', {{mark}}, 0)"
)
#: PostgreSQL: the message and its transition in one statement (one round trip, atomic alone).
_NEW_MESSAGE_PG = (
    f"WITH inserted AS ({_NEW_MESSAGE.format(mark='%s')} RETURNING id) "
    f"INSERT INTO {transitions.name} (message_id, to_state, at, attempt) "
    f"SELECT id, '{State.PENDING.value}', %s, 0 FROM inserted"
)
_NEW_MESSAGE_QMARK = (_NEW_MESSAGE.format(mark="?"), _FIRST_TRANSITION.format(mark="?"))


def insert_pending_one(driver: Any, dialect: Dialect, row: dict[str, Any], now: datetime) -> None:
    """Insert one new message as ``pending`` with its first transition, through the driver's own
    connection ``driver`` (:meth:`~wadispatch.ledger.database.Database.begin_driver`): the path
    of every single ``enqueue()``.

    ``row`` has the :data:`PENDING_COLUMNS` but ``state`` and ``attempts``, its ``request`` as
    JSON text, and no times (both are ``now``). Writes what :func:`insert_pending` writes (the
    transition's empty ``detail`` as SQL NULL, as :func:`insert_pending_bulk` does) without
    building and compiling two statements per message; PostgreSQL gets both rows in one
    statement. A unique key already used raises SQLAlchemy's
    :class:`~sqlalchemy.exc.IntegrityError`, as a Core insert does.
    """
    check_transition(None, State.PENDING, None)
    stamp = bound_for(dialect, messages.c.created_at, now)
    values = (
        row["id"],
        row["provider"],
        row["sender"],
        row["recipient"],
        row["conversation_id"],
        row["request"],
        row["idempotency_key"],
        row["fallback"],
        bound_for(dialect, messages.c.expires_at, row["expires_at"]),
        stamp,
        stamp,
        State.PENDING.value,
        0,
    )
    cursor = driver.cursor()
    try:
        if dialect.name == "postgresql":
            statement, params = _NEW_MESSAGE_PG, (*values, stamp)
            cursor.execute(statement, params)
        else:
            statement, params = _NEW_MESSAGE_QMARK[0], values
            cursor.execute(statement, params)
            cursor.execute(_NEW_MESSAGE_QMARK[1], (row["id"], stamp))
    except dialect.loaded_dbapi.IntegrityError as exc:
        raise IntegrityError(statement, params, exc) from exc
    finally:
        cursor.close()


def insert_pending_bulk(
    conn: Connection,
    columns: Sequence[str],
    values: list[tuple[Any, ...]],
    stamp: Any,
    unique: Sequence[str],
) -> set[str]:
    """Insert many new ``pending`` messages straight through the driver; return the ids inserted.

    ``values`` are the messages' ``columns`` (``id`` among them), as the driver takes them: no
    ``state`` nor ``attempts``, ``request`` as JSON text. A row whose ``unique`` columns match a
    message already there is skipped (``ON CONFLICT DO NOTHING`` on that unique index). ``stamp``
    is the batch's time as the driver takes it (see :func:`bound`). PostgreSQL: ``COPY`` into a
    temporary table, then one ``INSERT ... SELECT ... ON CONFLICT`` that also writes the
    transitions (a multi-row INSERT from the client spends most of its time in the driver parsing
    the statement). SQLite: one ``executemany`` each for the messages and their transitions.
    """
    check_transition(None, State.PENDING, None)
    if not values:
        return set()
    names = ", ".join(f'"{name}"' for name in (*columns, "state", "attempts"))
    conflict = ", ".join(unique)
    at = list(columns).index("id")
    cursor = conn.connection.driver_connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            return _copy_pending(cursor, names, conflict, values, stamp)
        marks = ", ".join("?" for _ in columns)
        cursor.executemany(
            f"INSERT INTO {messages.name} ({names}) VALUES ({marks}, '{State.PENDING.value}', 0) "
            f"ON CONFLICT ({conflict}) DO NOTHING",
            values,
        )
        ids = [value[at] for value in values]
        # The rows it skipped are not counted: when none was, every id went in.
        inserted = set(ids) if cursor.rowcount == len(values) else _existing(conn, ids)
        cursor.executemany(
            f"INSERT INTO {transitions.name} (message_id, to_state, at, attempt) VALUES (?, ?, ?, 0)",
            [(message_id, State.PENDING.value, stamp) for message_id in inserted],
        )
        return inserted
    finally:
        cursor.close()


def move(
    conn: Connection,
    message_ids: Iterable[str],
    from_state: State,
    to_state: State,
    *,
    now: datetime,
    where: Sequence[Any] = (),
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    count_attempt: bool = False,
    refund_attempt: bool = False,
) -> list[Moved]:
    """Move those of these messages that are in ``from_state`` (and match ``where``) to
    ``to_state`` in one conditional UPDATE, and log each move; return the messages moved.

    ``values`` sets more columns (:data:`TRANSITION_FIELDS`); ``count_attempt`` adds one to the
    attempts (a claim), ``refund_attempt`` takes one back (a claim whose request never left). Of
    two processes moving the same message, only one moves it.
    """
    check_transition(from_state, to_state, reason)
    fields = _checked_fields(values or {})
    ids = list(message_ids)
    if not ids:
        return []
    if count_attempt:
        fields["attempts"] = messages.c.attempts + 1
    elif refund_attempt:
        fields["attempts"] = messages.c.attempts - 1
    conditions = (messages.c.id.in_(ids), in_state(from_state, by_id=True), *where)
    return _move(conn, conditions, from_state, to_state, now, reason, detail, fields)


def move_where(
    conn: Connection,
    where: Sequence[Any],
    from_state: State,
    to_state: State,
    *,
    now: datetime,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> list[Moved]:
    """Move every message in ``from_state`` that matches ``where`` to ``to_state`` in one
    conditional UPDATE, and log each move; return the messages moved (as :func:`move`, for
    messages picked by a condition rather than by id). ``where`` should pick few rows through an
    index: the state is not offered to the planner as one (most messages of a state match it)."""
    check_transition(from_state, to_state, reason)
    fields = _checked_fields(values or {})
    conditions = (in_state(from_state, by_id=True), *where)
    return _move(conn, conditions, from_state, to_state, now, reason, detail, fields)


def _move(
    conn: Connection,
    conditions: Sequence[Any],
    from_state: State,
    to_state: State,
    now: datetime,
    reason: str | None,
    detail: dict[str, Any] | None,
    fields: dict[str, Any],
) -> list[Moved]:
    moved = conn.execute(
        update(messages)
        .where(*conditions)
        .values(state=to_state.value, reason=reason, updated_at=now, **fields)
        .returning(messages.c.id, messages.c.attempts)
    ).all()
    if moved:
        conn.execute(
            insert(transitions),
            [
                _transition_row(message_id, from_state, to_state, now, attempt, reason, detail)
                for message_id, attempt in moved
            ],
        )
    return [Moved(message_id, attempt) for message_id, attempt in moved]


def reopen_for_template(conn: Connection, message_id: str, *, now: datetime, detail: dict[str, Any]) -> bool:
    """Move a ``sent`` message that has not gone as its fallback template yet back to
    ``pending``, due at once, to go as its template (:data:`wadispatch.states.TO_TEMPLATE`);
    ``False`` when it is not such a message (any more). The caller checks that it has a fallback.

    Its provider id is cleared (``detail`` should keep it): later statuses of the interactive
    message must not settle the template.
    """
    check_transition(State.SENT, State.PENDING, None, to_template=True)
    conditions = (
        messages.c.id == message_id,
        in_state(State.SENT, by_id=True),
        messages.c.sent_as.is_(None),
    )
    fields = {"sent_as": SENT_AS_TEMPLATE, "next_attempt_at": now, "provider_message_id": None}
    return bool(_move(conn, conditions, State.SENT, State.PENDING, now, None, detail, fields))


def move_one(
    conn: Connection,
    message_id: str,
    from_state: State,
    to_state: State,
    *,
    now: datetime,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> int | None:
    """Move one message ``from_state → to_state`` and log it; its attempt count, or ``None`` when
    it is not (or no longer) in ``from_state``."""
    moved = move(
        conn, [message_id], from_state, to_state, now=now, reason=reason, detail=detail, values=values
    )
    return moved[0].attempt if moved else None


_MARK_REQUESTED = (
    update(messages)
    .where(
        messages.c.id == bindparam("b_id"),
        messages.c.state == State.SENDING.value,
        messages.c.requested_at.is_(None),
        # The claim's own time: a message the reconciler took back and another worker claimed
        # again is not this claim's to send any more.
        messages.c.updated_at == bindparam("b_claimed_at"),
    )
    .values(requested_at=bindparam("b_now"))
)


def mark_requested(conn: Connection, claims: Sequence[tuple[str, datetime]], now: datetime) -> set[str]:
    """Record that these claimed messages' requests are about to leave; return the ids marked.

    ``claims`` are (message id, the time of its claim). A message is marked only if it is still
    ``sending`` under that very claim and not marked yet; its request may go out only if it was.
    Writes neither state nor attempts: the claim counted the attempt.
    """
    if not claims:
        return set()
    params = [{"b_id": message_id, "b_claimed_at": at, "b_now": now} for message_id, at in claims]
    if conn.execute(_MARK_REQUESTED, params).rowcount == len(claims):
        return {message_id for message_id, _ in claims}
    # Some claim was taken back meanwhile (rare), or an earlier try of this write was committed
    # after all: a claim still ``sending`` under the same claim time and marked is ours.
    claimed_at = dict(claims)
    found: set[str] = set()
    for start in range(0, len(claims), 500):
        chunk = [message_id for message_id, _ in claims[start : start + 500]]
        rows = conn.execute(
            select(messages.c.id, messages.c.updated_at).where(
                messages.c.id.in_(chunk),
                messages.c.state == State.SENDING.value,
                messages.c.requested_at.is_not(None),
            )
        ).all()
        found.update(row.id for row in rows if _same_time(row.updated_at, claimed_at[row.id]))
    return found


def _same_time(stored: datetime, claimed: datetime) -> bool:
    # SQLite hands times back without their zone; the claim's are UTC.
    if stored.tzinfo is None:
        claimed = claimed.replace(tzinfo=None)
    return stored == claimed


_APPLY = (
    update(messages)
    .where(messages.c.id == bindparam("b_id"), messages.c.state == bindparam("b_from"))
    .values(
        state=bindparam("b_to"),
        reason=bindparam("b_reason"),
        attempts=messages.c.attempts - bindparam("b_refund"),
        updated_at=bindparam("b_now"),
        next_attempt_at=bindparam("b_next"),
        provider_message_id=bindparam("b_pmid"),
        provider_error_code=bindparam("b_code"),
        provider_error_message=bindparam("b_message"),
        # Set once (the fallback template goes instead), never cleared by a later change.
        sent_as=func.coalesce(bindparam("b_sent_as", type_=messages.c.sent_as.type), messages.c.sent_as),
    )
)


def _check_changes(changes: Iterable[Change]) -> None:
    """Raise :class:`~wadispatch.errors.IllegalTransition` if any change breaks the state machine."""
    for change in changes:
        check_transition(change.from_state, change.to_state, change.reason)


def apply_changes(conn: Connection, changes: list[Change], now: datetime) -> bool:
    """Apply a batch of changes with one UPDATE statement and log them; ``False`` when some
    message was not in its change's ``from_state``: then the caller rolls back and applies the
    changes one at a time (:func:`apply_change`)."""
    _check_changes(changes)
    if not changes:
        return True
    changed = conn.execute(_APPLY, [_apply_params(change, now) for change in changes]).rowcount
    if changed != len(changes):
        return False
    conn.execute(insert(transitions), [_change_row(change, now) for change in changes])
    return True


def apply_change(conn: Connection, change: Change, now: datetime) -> bool:
    """Apply one change exactly as :func:`apply_changes` does (the attempt given back when no
    request was made included) and log it; ``False`` when the message was not in its
    ``from_state`` (nothing written)."""
    _check_changes([change])
    if conn.execute(_APPLY, _apply_params(change, now)).rowcount != 1:
        return False
    conn.execute(insert(transitions), _change_row(change, now))
    return True


def bound(conn: Connection, column: Any, value: Any) -> Any:
    """``value`` as the driver gets it for ``column`` (e.g. SQLite's datetime text)."""
    return bound_for(conn.dialect, column, value)


def bound_for(dialect: Dialect, column: Any, value: Any) -> Any:
    """``value`` as the driver of ``dialect`` gets it for ``column``."""
    key = (type(dialect), column.table.name, column.name)
    processor = _processors.get(key, _UNKNOWN)
    if processor is _UNKNOWN:
        processor = _processors[key] = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor(value) if processor else value


_UNKNOWN = object()
#: A column's bind processor by dialect class: it depends on the column's type and the dialect only.
_processors: dict[tuple[type, str, str], Any] = {}


def _apply_params(change: Change, now: datetime) -> dict[str, Any]:
    return {
        "b_id": change.message_id,
        "b_from": change.from_state.value,
        "b_to": change.to_state.value,
        "b_reason": change.reason,
        "b_now": now,
        "b_next": change.next_attempt_at,
        # A provider's answer is cut to what the columns hold rather than fail the whole write.
        "b_pmid": _cut(change.provider_message_id, messages.c.provider_message_id),
        "b_code": _cut(change.provider_error_code, messages.c.provider_error_code),
        "b_message": change.provider_error_message,
        "b_refund": 0 if change.request_made else 1,
        "b_sent_as": change.sent_as,
    }


def _cut(value: str | None, column: Any) -> str | None:
    return value[: column.type.length] if value is not None else None


def _change_row(change: Change, now: datetime) -> dict[str, Any]:
    return _transition_row(
        change.message_id,
        change.from_state,
        change.to_state,
        now,
        change.attempt,
        change.reason,
        change.detail,
    )


def _transition_row(
    message_id: str,
    from_state: State | None,
    to_state: State,
    at: datetime,
    attempt: int,
    reason: str | None,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "from_state": from_state.value if from_state else None,
        "to_state": to_state.value,
        "at": at,
        "attempt": attempt,
        "reason": reason,
        "detail": detail,
    }


def _first_transition(message_id: str, now: datetime) -> dict[str, Any]:
    return _transition_row(message_id, None, State.PENDING, now, 0, None, None)


def _checked_fields(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - TRANSITION_FIELDS
    if unknown:
        raise TypeError(f"a transition cannot set {sorted(unknown)}")
    return dict(values)


def _existing(conn: Connection, message_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start : start + 500]
        found.update(conn.execute(select(messages.c.id).where(messages.c.id.in_(chunk))).scalars())
    return found


def _copy_pending(
    cursor: Any, names: str, conflict: str, values: list[tuple[Any, ...]], stamp: Any
) -> set[str]:
    staging = "wadispatch_pending_staging"
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
        f"(LIKE {messages.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    pending = (State.PENDING.value, 0)
    with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
        for value in values:
            copy.write_row(value + pending)
    cursor.execute(
        f"WITH inserted AS (INSERT INTO {messages.name} ({names}) SELECT {names} FROM {staging} "
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING id) "
        f"INSERT INTO {transitions.name} (message_id, to_state, at, attempt) "
        "SELECT id, %s, %s, 0 FROM inserted RETURNING message_id",
        (State.PENDING.value, stamp),
    )
    return {row[0] for row in cursor.fetchall()}
