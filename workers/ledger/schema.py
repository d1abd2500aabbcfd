"""The ledger's tables, every one of them, and the SQL helpers that name their columns.

Messages and their transitions, webhook events, API keys, dead letters, campaigns with their
skipped rows, and suppressions. A change here needs its revision in
:mod:`wadispatch.ledger.migrations` (the tests compare the two).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    exists,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from wadispatch.states import State

metadata = MetaData()

_AUTO_ID = BigInteger().with_variant(Integer, "sqlite")
#: A recipient: an E.164 number (at most 20) or a business-scoped user id (``US.ENT.`` and up to
#: 128 characters, as Meta documents them).
RECIPIENT_LENGTH = 135

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("sender", String(256)),
    Column("recipient", String(RECIPIENT_LENGTH)),
    Column("conversation_id", String(36)),
    Column("request", JSON, nullable=False),
    Column("idempotency_key", String(255), unique=True),
    Column("state", String(16), nullable=False),
    Column("reason", String(32)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True)),
    # Set just before the current attempt's request leaves; None while the claimed message waits
    # for its slot. A crash then tells "never requested" (safe to send) from "on the wire".
    Column("requested_at", DateTime(timezone=True)),
    Column("provider_message_id", String(255)),
    Column("provider_error_code", String(64)),
    Column("provider_error_message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("reply_id", String(256)),
    Column("reply_title", String(256)),
    Column("replied_at", DateTime(timezone=True)),
    # The campaign a message belongs to and its row in the campaign's file (None outside campaigns).
    Column("campaign_id", String(36)),
    Column("campaign_row", Integer),
    # Not sent after this time: the claim fails it ``expired`` instead.
    Column("expires_at", DateTime(timezone=True)),
    # No job is queued for the message until this time (a campaign's start, a send window).
    Column("held_until", DateTime(timezone=True)),
    # The approved template sent instead when the recipient's 24-hour window is closed.
    Column("fallback", JSON),
    # ``template`` when the fallback went out instead of the interactive message.
    Column("sent_as", String(16)),
    Index("ix_messages_state_updated_at", "state", "updated_at"),
    # The reconciler pages through one sender's stale pending messages in queue order.
    Index("ix_messages_state_sender_updated_at", "state", "provider", "sender", "updated_at", "id"),
    Index("ix_messages_provider_message_id", "provider", "provider_message_id"),
    Index("ux_messages_campaign_recipient", "campaign_id", "recipient", unique=True),
    Index("ix_messages_campaign_row", "campaign_id", "campaign_row"),
    Index("ix_messages_held_until", "held_until"),
    # The reconciler's expiry pass finds expired pending messages without reading the others.
    Index("ix_messages_expires_at", "expires_at"),
)
"""One row per message. Its ``state`` and ``attempts`` are written only by
:mod:`wadispatch.ledger.writer`."""

transitions = Table(
    "transitions",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False, index=True),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("reason", String(32)),
    Column("detail", JSON),
)
"""The append-only log of every state change, written only by :mod:`wadispatch.ledger.writer`."""

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("event_key", String(255), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
"""Every webhook event applied, once: a second delivery of the same event finds its key here."""

early_events = Table(
    "early_events",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("event_key", String(255), nullable=False),
    # One row per id the event names: our message id, or one of the provider's ids for it.
    Column("message_id", String(36)),
    Column("provider_message_id", String(255)),
    Column("kind", String(16), nullable=False),
    Column("event", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_early_events_provider_message_id", "provider", "provider_message_id"),
    Index("ix_early_events_message_id", "message_id"),
    Index("ix_early_events_received_at", "received_at"),
)
"""Webhook statuses and replies that named a message whose send was not recorded yet: kept,
and applied the moment the send records the message's provider id (or dropped, logged, once
older than ``early_events_keep_seconds``)."""

contacts = Table(
    "contacts",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("user_id", String(RECIPIENT_LENGTH), primary_key=True),
    Column("phone", String(32), nullable=False),
    Column("learned_at", DateTime(timezone=True), nullable=False),
    Index("ix_contacts_provider_phone", "provider", "phone"),
)
"""A user's business-scoped user id and phone number, learned from webhooks that name both, so a
webhook naming only one opens the 24-hour window under both."""

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

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
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
"""Jobs no worker could run (README "Dead letters")."""

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
    # A pool of senders of the same provider (``sender`` is then the first of them).
    Column("senders", JSON),
    Column("start_at", DateTime(timezone=True)),
    # ``HH:MM[:SS]-HH:MM[:SS]`` in the recipient's time zone, or in ``time_zone`` when that is set.
    Column("send_window", String(32)),
    Column("time_zone", String(64)),
    Column("valid_for_seconds", Integer),
    Column("expires_at", DateTime(timezone=True)),
    Column("fallback", JSON),
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
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("sender", String(256), nullable=False),
    Column("recipient", String(RECIPIENT_LENGTH), nullable=False),
    Column("reason", String(256)),
    Column("source", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_suppressions_sender_recipient", "sender", "recipient", unique=True),
    Index("ix_suppressions_recipient", "recipient"),
)
"""Recipients not to send campaigns to: ``sender`` ``""`` means every sender."""

sender_assignments = Table(
    "sender_assignments",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("recipient", String(RECIPIENT_LENGTH), primary_key=True),
    Column("sender", String(256), nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
)
"""The sender of a pool that writes to a recipient: later campaigns of a pool holding that sender
use it again (a recipient hears from one number)."""

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


def _listed() -> Any:
    """SQL: the message's recipient is on the suppression list of its sender or of every sender."""
    entry = select(suppressions.c.id).where(
        suppressions.c.recipient == messages.c.recipient,
        (suppressions.c.sender == messages.c.sender) | (suppressions.c.sender == SUPPRESS_ALL_SENDERS),
    )
    return exists(entry)


def campaign_recipient_not_suppressed(*, by_id: bool = False) -> Any:
    """SQL: the message is outside any campaign, or its recipient is not on the suppression list
    (of its sender, or of every sender). Checked by the claim, so that a campaign message whose
    number went on the list after it was queued never goes out.

    ``by_id`` when the query picks rows by id (see :class:`Unindexed`).
    """
    campaign_id = Unindexed(messages.c.campaign_id) if by_id else messages.c.campaign_id
    return campaign_id.is_(None) | ~_listed()


def campaign_recipient_suppressed() -> Any:
    """SQL: a campaign message whose recipient is on the suppression list (the claim's refusal)."""
    return Unindexed(messages.c.campaign_id).is_not(None) & _listed()
