"""The ledger: every message and every state change, the system of record.

SQLAlchemy Core on SQLite (WAL) by default or PostgreSQL. Every state change goes through
:meth:`Ledger.transition`, which checks the state machine (:mod:`wadispatch.states`), updates the
message only if it is still in the state the caller expected, and appends to the transitions log,
all in one transaction: an illegal or stale change raises and writes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from wadispatch.errors import StaleState, UnknownMessage
from wadispatch.messages import SendRequest
from wadispatch.states import ALLOWED, State, check_transition
from wadispatch.webhooks.events import MessageRef

log = logging.getLogger(__name__)

metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("sender", String(256)),
    Column("recipient", String(32)),
    Column("conversation_id", String(36)),
    Column("request", JSON, nullable=False),
    Column("idempotency_key", String(255), unique=True),
    Column("state", String(16), nullable=False),
    Column("reason", String(32)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("provider_message_id", String(255)),
    Column("provider_error_code", String(64)),
    Column("provider_error_message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("reply_id", String(256)),
    Column("reply_title", String(256)),
    Column("replied_at", DateTime(timezone=True)),
    Index("ix_messages_state_updated_at", "state", "updated_at"),
    Index("ix_messages_provider_message_id", "provider", "provider_message_id"),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False, index=True),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("reason", String(32)),
    Column("detail", JSON),
)

# --- Webhooks and API keys (issue 6) ---------------------------------------------------------
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("event_key", String(255), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
"""Every webhook event applied, once: a second delivery of the same event finds its key here."""

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
"""HTTP API keys, stored as the SHA-256 of the key (the key itself is shown once, at creation)."""
# --- end of issue 6 tables ---------------------------------------------------------------------

# --- Recovery: dead letters (README "Dead letters") -------------------------------------------
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("queue", String(255)),
    Column("task", String(255)),
    Column("reason", String(32), nullable=False),
    Column("error", Text),
    Column("body", Text, nullable=False),
    Column("body_encoding", String(16), nullable=False),
    Column("body_truncated", Boolean, nullable=False, default=False),
    Column("args", JSON),
    Column("headers", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("replayed_at", DateTime(timezone=True)),
)


@dataclass(frozen=True)
class DeadLetter:
    """A job no worker could run, kept with why (see :mod:`wadispatch.deadletters`).

    ``args`` holds the task's arguments when the body could be decoded (then it can be replayed);
    ``body`` is the raw body as text, or base64 when ``body_encoding`` is ``"base64"``.
    """

    reason: str
    body: str
    body_encoding: str = "utf-8"
    body_truncated: bool = False
    queue: str | None = None
    task: str | None = None
    error: str | None = None
    args: list[Any] | None = None
    headers: dict[str, Any] | None = None
    id: int | None = None
    created_at: datetime | None = None
    replayed_at: datetime | None = None

    @property
    def replayable(self) -> bool:
        return self.task is not None and self.args is not None


# --- campaigns (issue 5): campaigns, their skipped rows, suppressions, messages.campaign_* -------------

messages.append_column(Column("campaign_id", String(36)))
messages.append_column(Column("campaign_row", Integer))
"""The campaign a message belongs to, and its row in the campaign's file (None outside campaigns)."""
Index("ux_messages_campaign_recipient", messages.c.campaign_id, messages.c.recipient, unique=True)
Index("ix_messages_campaign_row", messages.c.campaign_id, messages.c.campaign_row)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("sender", String(256)),
    Column("source", String(1024)),
    Column("template", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("accepted", Integer, nullable=False, default=0),
    Column("invalid", Integer, nullable=False, default=0),
    Column("duplicate", Integer, nullable=False, default=0),
    Column("suppressed", Integer, nullable=False, default=0),
    Column("finished_reading_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

campaign_row_errors = Table(
    "campaign_row_errors",
    metadata,
    Column("campaign_id", String(36), ForeignKey("campaigns.id"), primary_key=True),
    Column("row_number", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("recipient", String(64)),
    Column("reason", Text, nullable=False),
)
"""Rows of a campaign's file that were not accepted: ``invalid``, ``duplicate`` or ``suppressed``."""

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("sender", String(256), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("reason", String(256)),
    Column("source", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_suppressions_sender_recipient", "sender", "recipient", unique=True),
    Index("ix_suppressions_recipient", "recipient"),
)
"""Recipients not to send campaigns to: ``sender`` ``""`` means every sender."""

SUPPRESS_ALL_SENDERS = ""
RUNNING = "running"


class Unindexed(ColumnElement[Any]):
    """A column SQLite's planner must not pick an index for (compiled ``+column`` there).

    Without statistics, SQLite prefers an index on ``state`` (or ``campaign_id``) over the primary
    key for ``id IN (...) AND state = ...``, and scans every pending message to find a batch of 100.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(Unindexed)
def _compile_unindexed(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(Unindexed, "sqlite")
def _compile_unindexed_sqlite(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))  # SQLite's documented no-index hint


def in_state(state: State, *, by_id: bool = False) -> ColumnElement[bool]:
    """``messages.state == state``; ``by_id`` when the query picks rows by id (use the key)."""
    column = Unindexed(messages.c.state) if by_id else messages.c.state
    return column == state.value


def campaign_allows_sending(*, by_id: bool = False) -> Any:
    """SQL: the message is outside any campaign, or its campaign is running (not paused, cancelled).

    ``by_id`` when the query picks rows by id (see :class:`Unindexed`).
    """
    running = select(campaigns.c.id).where(campaigns.c.status == RUNNING)
    campaign_id = Unindexed(messages.c.campaign_id) if by_id else messages.c.campaign_id
    return campaign_id.is_(None) | campaign_id.in_(running.scalar_subquery())


# --- end of campaigns ------------------------------------------------------------------------------

#: Message columns a transition may set besides state, reason and updated_at.
TRANSITION_FIELDS = frozenset(
    {"next_attempt_at", "provider_message_id", "provider_error_code", "provider_error_message"}
)


@dataclass(frozen=True)
class MessageRecord:
    """One row of the messages table."""

    id: str
    provider: str
    sender: str | None
    recipient: str | None
    conversation_id: str | None
    request: dict[str, Any]
    idempotency_key: str | None
    state: State
    reason: str | None
    attempts: int
    next_attempt_at: datetime | None
    provider_message_id: str | None
    provider_error_code: str | None
    provider_error_message: str | None
    created_at: datetime
    updated_at: datetime
    reply_id: str | None = None
    reply_title: str | None = None
    replied_at: datetime | None = None

    def send_request(self) -> SendRequest:
        """The stored request as a model (validated again)."""
        return SendRequest.model_validate(self.request)


@dataclass(frozen=True)
class Change:
    """One state change of a batch (see :meth:`Ledger.apply_many`).

    The message's ``next_attempt_at`` and provider fields are all set from this change: a field
    left ``None`` is cleared.
    """

    message_id: str
    from_state: State
    to_state: State
    attempt: int
    reason: str | None = None
    detail: dict[str, Any] | None = None
    next_attempt_at: datetime | None = None
    provider_message_id: str | None = None
    provider_error_code: str | None = None
    provider_error_message: str | None = None
    request_made: bool = True
    """False when no request reached the provider (held back by the limiter): the claim's attempt
    is given back, so ``attempts`` counts requests."""


@dataclass(frozen=True)
class TransitionRecord:
    """One row of the append-only transitions log."""

    from_state: State | None
    to_state: State
    at: datetime
    attempt: int
    reason: str | None
    detail: dict[str, Any] | None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """Message records and their state transitions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction.

        On SQLite, the threads of a process take turns: SQLite admits one writer at a time
        anyway, and while it waits its busy handler sleeps (up to 100 ms a turn), where a lock
        hands over at once.
        """
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10, max_overflow: int = 10) -> Ledger:
        """A ledger on a database URL; the schema is created when missing.

        ``postgresql://`` URLs use the psycopg (3) driver.
        """
        url = normalise_database_url(url)
        if url.startswith("sqlite"):
            engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)
        ledger = cls(engine)
        ledger.create_schema()
        return ledger

    def create_schema(self) -> None:
        """Create the tables and indexes that do not exist yet (safe from several processes)."""
        try:
            add_missing_columns(self.engine)
            metadata.create_all(self.engine)
        except (IntegrityError, ProgrammingError, OperationalError):
            # Another process created them between our check and our CREATE.
            add_missing_columns(self.engine)
            metadata.create_all(self.engine)

    def record_pending(self, request: SendRequest, *, now: datetime | None = None) -> tuple[str, bool]:
        """Record a new message as ``pending``; return ``(message_id, created)``.

        With an idempotency key already used, nothing is written and the first message's id is
        returned with ``created=False``.
        """
        now = now or utcnow()
        if request.idempotency_key is not None:
            existing = self.find_by_idempotency_key(request.idempotency_key)
            if existing is not None:
                return existing, False
        row = _pending_row(request, now)
        message_id = row["id"]
        check_transition(None, State.PENDING, None)
        try:
            with self.begin() as conn:
                conn.execute(insert(messages), row)
                conn.execute(insert(transitions), _first_transition(message_id, now))
        except IntegrityError:
            if request.idempotency_key is None:
                raise
            existing = self.find_by_idempotency_key(request.idempotency_key)
            if existing is None:
                raise
            return existing, False
        return message_id, True

    def record_pending_many(
        self, requests: list[SendRequest], *, now: datetime | None = None
    ) -> list[tuple[str, bool]]:
        """Record many messages as ``pending`` in one transaction; ``(message_id, created)`` each.

        Requests whose idempotency key is already used (in the ledger or earlier in the same
        list) get the first message's id and ``created=False``; nothing is written for them.
        """
        check_transition(None, State.PENDING, None)
        now = now or utcnow()
        keys = [request.idempotency_key for request in requests if request.idempotency_key]
        known = self._ids_by_idempotency_key(keys)
        results: list[tuple[str, bool]] = []
        rows: list[dict[str, Any]] = []
        for request in requests:
            key = request.idempotency_key
            if key is not None and key in known:
                results.append((known[key], False))
                continue
            row = _pending_row(request, now)
            if key is not None:
                known[key] = row["id"]
            rows.append(row)
            results.append((row["id"], True))
        if not rows:
            return results
        try:
            with self.begin() as conn:
                conn.execute(insert(messages), rows)
                conn.execute(insert(transitions), [_first_transition(row["id"], now) for row in rows])
        except IntegrityError:
            if not keys:
                raise
            # Another producer used one of the keys meanwhile: fall back to one at a time.
            return [self.record_pending(request, now=now) for request in requests]
        return results

    def _ids_by_idempotency_key(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows = conn.execute(
                    select(messages.c.idempotency_key, messages.c.id).where(
                        messages.c.idempotency_key.in_(chunk)
                    )
                ).all()
                found.update((row.idempotency_key, row.id) for row in rows)
        return found

    def find_by_idempotency_key(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(messages.c.id).where(messages.c.idempotency_key == key)
            ).scalar_one_or_none()

    def claim(self, message_id: str, *, now: datetime | None = None) -> MessageRecord | None:
        """Atomically move one due ``pending`` message to ``sending``; ``None`` if it was not.

        Two workers handed the same job race on one conditional UPDATE: exactly one wins.
        """
        pending = self.load_pending([message_id])
        claimed = self.claim_many(pending, now=now)
        return claimed[0] if claimed else None

    def load_pending(self, message_ids: list[str]) -> list[MessageRecord]:
        """The messages among these ids that are ``pending`` (due or not), in the given order."""
        if not message_ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(messages).where(
                    messages.c.id.in_(message_ids),
                    in_state(State.PENDING, by_id=True),
                    campaign_allows_sending(by_id=True),
                )
            ).all()
        order = {message_id: index for index, message_id in enumerate(message_ids)}
        return sorted((_record(row) for row in rows), key=lambda record: order[record.id])

    def claim_many(self, records: list[MessageRecord], *, now: datetime | None = None) -> list[MessageRecord]:
        """Atomically move the due ``pending`` messages among these to ``sending``.

        One conditional UPDATE for all of them: a message another worker claimed first is not
        returned. The claims' transitions are logged in the same transaction. Returns the given
        records as claimed (state and attempts updated), without reading them again.
        """
        if not records:
            return []
        now = now or utcnow()
        due = (messages.c.next_attempt_at.is_(None)) | (messages.c.next_attempt_at <= now)
        with self.begin() as conn:
            claimed = conn.execute(
                update(messages)
                .where(
                    messages.c.id.in_([record.id for record in records]),
                    in_state(State.PENDING, by_id=True),
                    due,
                    campaign_allows_sending(by_id=True),
                )
                .values(
                    state=State.SENDING.value,
                    attempts=messages.c.attempts + 1,
                    next_attempt_at=None,
                    updated_at=now,
                )
                .returning(messages.c.id, messages.c.attempts)
            ).all()
            attempts = {row.id: row.attempts for row in claimed}
            if attempts:
                conn.execute(
                    insert(transitions),
                    [
                        {
                            "message_id": message_id,
                            "from_state": State.PENDING.value,
                            "to_state": State.SENDING.value,
                            "at": now,
                            "attempt": attempt,
                        }
                        for message_id, attempt in attempts.items()
                    ],
                )
        return [
            dataclasses.replace(
                record,
                state=State.SENDING,
                attempts=attempts[record.id],
                next_attempt_at=None,
                updated_at=now,
            )
            for record in records
            if record.id in attempts
        ]

    def apply_many(self, changes: list[Change], *, now: datetime | None = None) -> list[str]:
        """Apply many state changes in one transaction; return the ids that were stale.

        Every change is checked against the state machine first (an illegal one raises and
        nothing is written). A message no longer in its change's ``from_state`` is left alone and
        its id returned; the others are applied.
        """
        for change in changes:
            check_transition(change.from_state, change.to_state, change.reason)
        if not changes:
            return []
        now = now or utcnow()
        statement = (
            update(messages)
            .where(messages.c.id == bindparam("b_id"), messages.c.state == bindparam("b_from"))
            .values(
                state=bindparam("b_to"),
                reason=bindparam("b_reason"),
                attempts=messages.c.attempts - bindparam("b_refund"),
                updated_at=now,
                next_attempt_at=bindparam("b_next"),
                provider_message_id=bindparam("b_pmid"),
                provider_error_code=bindparam("b_code"),
                provider_error_message=bindparam("b_message"),
            )
        )
        rows = [
            {
                "b_id": change.message_id,
                "b_from": change.from_state.value,
                "b_to": change.to_state.value,
                "b_reason": change.reason,
                "b_next": change.next_attempt_at,
                "b_pmid": change.provider_message_id,
                "b_code": change.provider_error_code,
                "b_message": change.provider_error_message,
                "b_refund": 0 if change.request_made else 1,
            }
            for change in changes
        ]
        with self.begin() as conn:
            changed = conn.execute(statement, rows).rowcount
            if changed != len(changes):
                # Someone else moved some of them (rare): find which, then apply the rest only.
                conn.rollback()
                return self._apply_one_by_one(changes, now)
            conn.execute(insert(transitions), [_transition_row(change, now) for change in changes])
        return []

    def _apply_one_by_one(self, changes: list[Change], now: datetime) -> list[str]:
        stale: list[str] = []
        for change in changes:
            try:
                self.transition(
                    change.message_id,
                    change.from_state,
                    change.to_state,
                    reason=change.reason,
                    detail=change.detail,
                    now=now,
                    next_attempt_at=change.next_attempt_at,
                    provider_message_id=change.provider_message_id,
                    provider_error_code=change.provider_error_code,
                    provider_error_message=change.provider_error_message,
                )
            except (StaleState, UnknownMessage):
                stale.append(change.message_id)
        return stale

    def transition(
        self,
        message_id: str,
        from_state: State,
        to_state: State,
        *,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
        now: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Move a message ``from_state → to_state`` and log it, or raise and write nothing."""
        check_transition(from_state, to_state, reason)
        unknown = set(fields) - TRANSITION_FIELDS
        if unknown:
            raise TypeError(f"transition() cannot set {sorted(unknown)}")
        now = now or utcnow()
        with self.begin() as conn:
            attempt = conn.execute(
                update(messages)
                .where(messages.c.id == message_id, messages.c.state == from_state.value)
                .values(state=to_state.value, reason=reason, updated_at=now, **fields)
                .returning(messages.c.attempts)
            ).scalar_one_or_none()
            if attempt is None:
                current = conn.execute(
                    select(messages.c.state).where(messages.c.id == message_id)
                ).scalar_one_or_none()
                if current is None:
                    raise UnknownMessage(message_id)
                raise StaleState(f"message {message_id} is {current}, not {from_state}")
            conn.execute(
                insert(transitions),
                {
                    "message_id": message_id,
                    "from_state": from_state.value,
                    "to_state": to_state.value,
                    "at": now,
                    "attempt": attempt,
                    "reason": reason,
                    "detail": detail,
                },
            )

    def get(self, message_id: str) -> MessageRecord:
        """The message's record; :class:`UnknownMessage` when there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(messages).where(messages.c.id == message_id)).one_or_none()
        if row is None:
            raise UnknownMessage(message_id)
        return _record(row)

    def transitions(self, message_id: str) -> list[TransitionRecord]:
        """The message's transitions, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(transitions).where(transitions.c.message_id == message_id).order_by(transitions.c.id)
            ).all()
        return [
            TransitionRecord(
                from_state=State(row.from_state) if row.from_state else None,
                to_state=State(row.to_state),
                at=_aware(row.at),
                attempt=row.attempt,
                reason=row.reason,
                detail=row.detail,
            )
            for row in rows
        ]

    def count_by_state(self) -> dict[str, int]:
        """How many messages are in each state."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state)).all()
        return {state: count for state, count in rows}

    def count_transitions(self, from_state: State, to_state: State) -> int:
        """How many times any message moved ``from_state → to_state`` (e.g. retries)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count())
                .select_from(transitions)
                .where(transitions.c.from_state == from_state.value, transitions.c.to_state == to_state.value)
            ).scalar_one()

    def all_messages(self) -> list[MessageRecord]:
        """Every message, oldest first (for reports on small ledgers such as the demo's)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(messages).order_by(messages.c.created_at, messages.c.id)).all()
        return [_record(row) for row in rows]

    def dispose(self) -> None:
        self.engine.dispose()

    # --- Webhooks and API keys (issue 6) -----------------------------------------------------------

    def apply_webhook_status(
        self,
        provider: str,
        event_key: str,
        ref: MessageRef,
        to_state: State,
        *,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
        provider_error_code: str | None = None,
        provider_error_message: str | None = None,
        now: datetime | None = None,
    ) -> WebhookOutcome:
        """Apply a provider's status to the message it names, once per ``event_key``.

        The state machine decides: a status that would move the message backwards or sideways
        (``delivered`` after ``read``) changes nothing and is not an error. A status for a message
        still ``pending`` or ``sending`` (the provider called back before the worker recorded the
        send) is not recorded at all: the outcome says ``too_early``, so that the provider's
        redelivery is applied. The event's key is recorded in the same transaction as the change.
        """
        fields: dict[str, Any] = {}
        if to_state is State.FAILED:
            fields = {
                "reason": reason,
                "provider_error_code": provider_error_code,
                "provider_error_message": provider_error_message,
            }

        def apply(conn: Connection, record: MessageRecord, at: datetime) -> bool:
            current = record.state
            if current in (State.PENDING, State.SENDING):
                raise _TooEarly
            for _ in range(3):  # another event for this message may commit between our steps
                if to_state not in ALLOWED[current]:
                    return False
                check_transition(current, to_state, reason)
                attempt = conn.execute(
                    update(messages)
                    .where(messages.c.id == record.id, messages.c.state == current.value)
                    .values(state=to_state.value, updated_at=at, **fields)
                    .returning(messages.c.attempts)
                ).scalar_one_or_none()
                if attempt is not None:
                    row = {"message_id": record.id, "from_state": current.value, "to_state": to_state.value}
                    row |= {"at": at, "attempt": attempt, "reason": fields.get("reason"), "detail": detail}
                    conn.execute(insert(transitions), row)
                    return True
                current = State(
                    conn.execute(select(messages.c.state).where(messages.c.id == record.id)).scalar_one()
                )
            return False

        return self._apply_webhook_event(provider, event_key, ref, apply, now)

    def apply_webhook_reply(
        self,
        provider: str,
        event_key: str,
        ref: MessageRef,
        *,
        reply_id: str,
        reply_title: str | None,
        now: datetime | None = None,
    ) -> WebhookOutcome:
        """Record the button or row chosen on the message it answers, once per ``event_key``
        (a later reply to the same message replaces an earlier one)."""

        def apply(conn: Connection, record: MessageRecord, at: datetime) -> bool:
            conn.execute(
                update(messages)
                .where(messages.c.id == record.id)
                .values(reply_id=reply_id[:256], reply_title=(reply_title or "")[:256] or None, replied_at=at)
            )
            return True

        return self._apply_webhook_event(provider, event_key, ref, apply, now)

    def _apply_webhook_event(
        self,
        provider: str,
        event_key: str,
        ref: MessageRef,
        apply: Callable[[Connection, MessageRecord, datetime], bool],
        now: datetime | None,
    ) -> WebhookOutcome:
        now = now or utcnow()
        if len(event_key) > 255:
            event_key = "sha256:" + hashlib.sha256(event_key.encode()).hexdigest()
        try:
            with self.begin() as conn:
                conn.execute(
                    insert(webhook_events),
                    {"provider": provider, "event_key": event_key, "received_at": now},
                )
                record = self._find_by_ref(conn, provider, ref) if ref else None
                if record is None:
                    return WebhookOutcome(duplicate=False, message=None, changed=False)
                changed = apply(conn, record, now)
                row = conn.execute(select(messages).where(messages.c.id == record.id)).one()
                return WebhookOutcome(duplicate=False, message=_record(row), changed=changed)
        except _TooEarly:  # rolled back: the event key is not recorded
            return WebhookOutcome(duplicate=False, message=None, changed=False, too_early=True)
        except IntegrityError:
            with self.engine.connect() as conn:
                seen = conn.execute(
                    select(func.count())
                    .select_from(webhook_events)
                    .where(
                        webhook_events.c.provider == provider, webhook_events.c.event_key == event_key[:255]
                    )
                ).scalar_one()
            if not seen:
                raise
            return WebhookOutcome(duplicate=True, message=None, changed=False)

    @staticmethod
    def _find_by_ref(conn: Connection, provider: str, ref: MessageRef) -> MessageRecord | None:
        if ref.message_id:
            row = conn.execute(
                select(messages).where(messages.c.id == ref.message_id, messages.c.provider == provider)
            ).one_or_none()
            if row is not None:
                return _record(row)
        if ref.provider_message_ids:
            row = conn.execute(
                select(messages)
                .where(
                    messages.c.provider == provider,
                    messages.c.provider_message_id.in_(ref.provider_message_ids),
                )
                .limit(1)
            ).one_or_none()
            if row is not None:
                return _record(row)
        return None

    def add_api_key(self, name: str, key_hash: str, prefix: str, *, now: datetime | None = None) -> str:
        """Store a new API key's hash; return the key's id."""
        key_id = str(uuid.uuid4())
        with self.begin() as conn:
            conn.execute(
                insert(api_keys),
                {
                    "id": key_id,
                    "name": name,
                    "key_hash": key_hash,
                    "prefix": prefix,
                    "created_at": now or utcnow(),
                },
            )
        return key_id

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash that is not revoked, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_keys).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
            ).one_or_none()
        return None if row is None else _api_key(row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every API key (revoked ones too), oldest first; never the key itself."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)).all()
        return [_api_key(row) for row in rows]

    def revoke_api_key(self, key_id: str, *, now: datetime | None = None) -> bool:
        """Revoke a key; ``False`` when there is no such key or it was revoked already."""
        with self.begin() as conn:
            changed = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now or utcnow())
            ).rowcount
        return bool(changed)

    # --- Recovery: the reconciler's queries and the dead-letter store (issue 7) ---------------
    # Every change below is one conditional UPDATE ... RETURNING: of two reconcilers that read
    # the same rows, only the one whose UPDATE matched a row acts on it.

    def existing_ids(self, message_ids: list[str]) -> set[str]:
        """The ids among these that the ledger knows, whatever their state."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(messages.c.id).where(messages.c.id.in_(message_ids))).scalars())

    def stale_pending_senders(self, cutoff: datetime) -> list[tuple[str, str | None]]:
        """The (provider, sender) pairs that have ``pending`` messages due and untouched since ``cutoff``."""
        with self.engine.connect() as conn:
            query = select(messages.c.provider, messages.c.sender).where(*_stale_pending(cutoff)).distinct()
            return [(provider, sender) for provider, sender in conn.execute(query).all()]

    def stale_pending_page(
        self,
        provider: str,
        sender: str | None,
        cutoff: datetime,
        after: tuple[Any, str] | None,
        limit: int,
    ) -> list[tuple[str, datetime]]:
        """Up to ``limit`` (id, updated_at) of the sender's stale ``pending`` messages, in the order
        they were last touched (queued); ``after``: the last (updated_at, id) of the previous page."""
        sender_is = messages.c.sender.is_(None) if sender is None else messages.c.sender == sender
        conditions = [*_stale_pending(cutoff), messages.c.provider == provider, sender_is]
        if after is not None:
            conditions.append(
                (messages.c.updated_at > after[0])
                | ((messages.c.updated_at == after[0]) & (messages.c.id > after[1]))
            )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(messages.c.id, messages.c.updated_at)
                .where(*conditions)
                .order_by(messages.c.updated_at, messages.c.id)
                .limit(limit)
            ).all()
        return [(row.id, _aware(row.updated_at)) for row in rows]

    def touch_stale_pending(self, message_ids: list[str], cutoff: datetime, now: datetime) -> list[str]:
        """Mark these messages seen at ``now`` if they are still stale; return those this call won."""
        if not message_ids:
            return []
        with self.begin() as conn:
            return list(
                conn.execute(
                    update(messages)
                    .where(messages.c.id.in_(message_ids), *_stale_pending(cutoff, by_id=True))
                    .values(updated_at=now)
                    .returning(messages.c.id)
                ).scalars()
            )

    def stuck_sending_ids(self, cutoff: datetime, limit: int) -> list[str]:
        """Up to ``limit`` messages ``sending`` since before ``cutoff``, oldest first."""
        return self._oldest_ids(_stuck_sending(cutoff), limit)

    def count_stuck_sending(self, cutoff: datetime) -> int:
        return self._count_where(_stuck_sending(cutoff))

    def _oldest_ids(self, conditions: list[Any], limit: int) -> list[str]:
        with self.engine.connect() as conn:
            query = select(messages.c.id).where(*conditions).order_by(messages.c.updated_at).limit(limit)
            return list(conn.execute(query).scalars())

    def _count_where(self, conditions: list[Any]) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(messages).where(*conditions)).scalar_one()

    def settle_stuck_sending(
        self,
        message_ids: list[str],
        cutoff: datetime,
        now: datetime,
        *,
        to_state: State,
        reason: str,
        detail: dict[str, Any],
        max_attempts: int | None = None,
    ) -> list[str]:
        """Move these messages, if still stuck in ``sending``, to ``to_state``; return those moved.

        ``max_attempts`` limits the move to messages with fewer attempts (a resend's budget).
        """
        check_transition(State.SENDING, to_state, reason)
        if not message_ids:
            return []
        conditions = [messages.c.id.in_(message_ids), *_stuck_sending(cutoff, by_id=True)]
        if max_attempts is not None:
            conditions.append(messages.c.attempts < max_attempts)
        with self.begin() as conn:
            moved = conn.execute(
                update(messages)
                .where(*conditions)
                .values(state=to_state.value, reason=reason, updated_at=now, next_attempt_at=None)
                .returning(messages.c.id, messages.c.attempts)
            ).all()
            if moved:
                conn.execute(
                    insert(transitions),
                    [
                        {
                            "message_id": row.id,
                            "from_state": State.SENDING.value,
                            "to_state": to_state.value,
                            "at": now,
                            "attempt": row.attempts,
                            "reason": reason,
                            "detail": detail,
                        }
                        for row in moved
                    ],
                )
        return [row.id for row in moved]

    def record_dead_letter(self, letter: DeadLetter, *, now: datetime | None = None) -> int:
        """Store a dead letter; return its id."""
        row = {
            field.name: getattr(letter, field.name)
            for field in dataclasses.fields(letter)
            if field.name not in ("id", "created_at", "replayed_at")
        }
        with self.begin() as conn:
            result = conn.execute(insert(dead_letters).values(**row, created_at=now or utcnow()))
            return int(result.inserted_primary_key[0])

    def dead_letters(self, *, include_replayed: bool = True, limit: int | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first."""
        query = select(dead_letters).order_by(dead_letters.c.id)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_dead_letter(row) for row in conn.execute(query).all()]

    def get_dead_letter(self, letter_id: int) -> DeadLetter | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(dead_letters).where(dead_letters.c.id == letter_id)).one_or_none()
        return _dead_letter(row) if row is not None else None

    def mark_dead_letter_replayed(self, letter_id: int, *, now: datetime | None = None) -> bool:
        """Mark a dead letter replayed; ``False`` if it was already (another replay won)."""
        with self.begin() as conn:
            changed = conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == letter_id, dead_letters.c.replayed_at.is_(None))
                .values(replayed_at=now or utcnow())
            ).rowcount
        return changed == 1

    def purge_dead_letters(self, *, replayed_only: bool = True) -> int:
        """Delete replayed dead letters (or all of them); return how many."""
        statement = delete(dead_letters)
        if replayed_only:
            statement = statement.where(dead_letters.c.replayed_at.is_not(None))
        with self.begin() as conn:
            return conn.execute(statement).rowcount


@dataclass(frozen=True)
class WebhookOutcome:
    """What applying one webhook event did: seen before, the message it named (as it is now),
    whether that message changed, or nothing because it came before the send was recorded."""

    duplicate: bool
    message: MessageRecord | None
    changed: bool
    too_early: bool = False


class _TooEarly(Exception):
    """A status for a message whose send is not recorded yet: roll back, let the provider retry."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """One HTTP API key, without the key: its id, name, first characters and lifetime."""

    id: str
    name: str
    key_hash: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _api_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        name=row.name,
        key_hash=row.key_hash,
        prefix=row.prefix,
        created_at=_aware(row.created_at),
        revoked_at=_aware(row.revoked_at),
    )


def _pending_row(request: SendRequest, now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "provider": request.provider,
        "sender": request.sender,
        "recipient": request.to,
        "conversation_id": str(request.conversation_id) if request.conversation_id else None,
        "request": request.model_dump(mode="json", exclude_none=True),
        "idempotency_key": request.idempotency_key,
        "state": State.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _transition_row(change: Change, now: datetime) -> dict[str, Any]:
    return {
        "message_id": change.message_id,
        "from_state": change.from_state.value,
        "to_state": change.to_state.value,
        "at": now,
        "attempt": change.attempt,
        "reason": change.reason,
        "detail": change.detail,
    }


def _first_transition(message_id: str, now: datetime) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "from_state": None,
        "to_state": State.PENDING.value,
        "at": now,
        "attempt": 0,
    }


def _stale_pending(cutoff: datetime, *, by_id: bool = False) -> list[Any]:
    """Pending, due since before ``cutoff``, untouched since then and free to be sent (outside a
    campaign, or its campaign running): its job may be lost."""
    return [
        in_state(State.PENDING, by_id=by_id),
        messages.c.updated_at < cutoff,
        messages.c.next_attempt_at.is_(None) | (messages.c.next_attempt_at < cutoff),
        # A paused campaign's messages wait; a cancelled one's are swept.
        campaign_allows_sending(by_id=by_id),
    ]


def _stuck_sending(cutoff: datetime, *, by_id: bool = False) -> list[Any]:
    return [in_state(State.SENDING, by_id=by_id), messages.c.updated_at < cutoff]


def _dead_letter(row: Any) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        queue=row.queue,
        task=row.task,
        reason=row.reason,
        error=row.error,
        body=row.body,
        body_encoding=row.body_encoding,
        body_truncated=row.body_truncated,
        args=row.args,
        headers=row.headers,
        created_at=_aware(row.created_at),
        replayed_at=_aware(row.replayed_at),
    )


def add_missing_columns(engine: Engine) -> None:
    """Add the nullable columns newer versions gave existing tables (``ALTER TABLE ... ADD COLUMN``).

    A ledger created by an older wadispatch keeps working: its tables gain the new columns, empty.
    """
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present and column.nullable]
        if not missing:
            continue
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
        for index in table.indexes:  # create_all() adds no index to a table that exists
            index.create(engine, checkfirst=True)


def normalise_database_url(url: str) -> str:
    """Pick the installed PostgreSQL driver for plain ``postgresql://`` and ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time in the ledger is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _record(row: Any) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        provider=row.provider,
        sender=row.sender,
        recipient=row.recipient,
        conversation_id=row.conversation_id,
        request=row.request,
        idempotency_key=row.idempotency_key,
        state=State(row.state),
        reason=row.reason,
        attempts=row.attempts,
        next_attempt_at=_aware(row.next_attempt_at),
        provider_message_id=row.provider_message_id,
        provider_error_code=row.provider_error_code,
        provider_error_message=row.provider_error_message,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        reply_id=row.reply_id,
        reply_title=row.reply_title,
        replied_at=_aware(row.replied_at),
    )


_ledgers: dict[tuple[int, str], Ledger] = {}
_ledgers_lock = threading.Lock()


def get_ledger(url: str | None = None) -> Ledger:
    """The ledger of this process for ``url`` (default: the configured database)."""
    if url is None:
        from wadispatch.settings import get_settings

        url = get_settings().database_url
    key = (os.getpid(), url)
    with _ledgers_lock:
        ledger = _ledgers.get(key)
        if ledger is None:
            ledger = _ledgers[key] = Ledger.from_url(url)
        return ledger
