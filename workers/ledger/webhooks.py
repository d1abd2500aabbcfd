"""Webhook events in the ledger: each applied once, statuses through the state machine, replies;
events that came before their message's send was recorded kept and applied when it is."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from wadispatch.fallback import reopens_for_template
from wadispatch.ledger import writer
from wadispatch.ledger.database import Database
from wadispatch.ledger.optouts import add_suppressions
from wadispatch.ledger.records import MessageRecord, aware, message_record, utcnow
from wadispatch.ledger.schema import (
    contacts,
    early_events,
    messages,
    webhook_events,
)
from wadispatch.states import ALLOWED, State
from wadispatch.webhooks.events import MessageRef

EventKind = Literal["status", "reply"]


@dataclass(frozen=True)
class WebhookOutcome:
    """What applying one webhook event did: seen before, the message it named (as it is now),
    whether that message changed, or ``kept`` for later because the message's send was not
    recorded yet."""

    duplicate: bool
    message: MessageRecord | None
    changed: bool
    kept: bool = False


@dataclass(frozen=True)
class EarlyApplied:
    """A kept webhook event, applied when its message's send was recorded."""

    kind: EventKind
    message: MessageRecord
    """The message as the event left it."""
    changed: bool
    reason: str | None = None
    """A ``failed`` status's reason."""


class WebhookEvents(Database):
    """Provider callbacks applied to the messages they name, each event once."""

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
        not recorded as sent yet (still ``pending`` or ``sending``, or no message has its provider
        id yet: the provider called back before the worker recorded its answer) is **kept** and
        applied the moment the send records it (:func:`apply_early_events`). The event's key is
        recorded in the same transaction, so a redelivery is a duplicate either way.
        """
        failed = to_state is State.FAILED
        event: dict[str, Any] = {"to_state": to_state.value, "detail": detail}
        if failed:
            event |= {
                "reason": reason,
                "provider_error_code": provider_error_code,
                "provider_error_message": provider_error_message,
            }
        return self._apply_webhook_event(provider, event_key, ref, "status", event, now)

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
        (a later reply to the same message replaces an earlier one). A reply to a message whose
        provider id is not recorded yet is kept, like a status."""
        event = {"reply_id": reply_id, "reply_title": reply_title}
        return self._apply_webhook_event(provider, event_key, ref, "reply", event, now)

    def record_webhook_event(self, provider: str, event_key: str, *, now: datetime | None = None) -> bool:
        """Record an event that names no message (an inbound message, a system notice) by its key:
        True the first time, False when the provider delivers it again (apply it only once)."""
        event_key = _stored_key(event_key)
        try:
            with self.begin() as conn:
                conn.execute(
                    insert(webhook_events),
                    {"provider": provider, "event_key": event_key, "received_at": now or utcnow()},
                )
        except IntegrityError:
            if not self._seen(provider, event_key):
                raise
            return False
        return True

    def drop_early_events(self, received_before: datetime) -> list[tuple[str, str]]:
        """Delete the kept events received before ``received_before`` (their message never
        appeared); return their (provider, kind), one per event, for the log."""
        kinds: dict[tuple[str, str], str] = {}
        for _ in range(_MAX_DROP_BATCHES):  # batched: a backlog never holds the ledger long
            with self.begin() as conn:
                batch = select(early_events.c.id).where(early_events.c.received_at < received_before)
                rows = conn.execute(
                    delete(early_events)
                    .where(early_events.c.id.in_(batch.limit(_DROP_BATCH).scalar_subquery()))
                    .returning(early_events.c.provider, early_events.c.event_key, early_events.c.kind)
                ).all()
            kinds.update(((row.provider, row.event_key), row.kind) for row in rows)
            if len(rows) < _DROP_BATCH:
                break
        return [(provider, kind) for (provider, _), kind in kinds.items()]

    def apply_matched_early_events(
        self, *, limit: int = 1000, now: datetime | None = None
    ) -> list[EarlyApplied]:
        """Apply the kept events whose message is now recorded as sent but were not applied with
        its send (the event was kept in the same instant the send was recorded); forget them."""
        now = now or utcnow()
        recorded = messages.c.state.not_in([state.value for state in _NOT_RECORDED_YET])
        by_provider_id = (
            select(messages.c.id)
            .join(
                early_events,
                (messages.c.provider == early_events.c.provider)
                & (messages.c.provider_message_id == early_events.c.provider_message_id),
            )
            .where(recorded)
        )
        by_our_id = (
            select(messages.c.id)
            .join(
                early_events,
                (messages.c.provider == early_events.c.provider)
                & (messages.c.id == early_events.c.message_id),
            )
            .where(recorded)
        )
        with self.begin() as conn:
            ids = list(
                dict.fromkeys(
                    [
                        *conn.execute(by_provider_id.limit(limit)).scalars(),
                        *conn.execute(by_our_id.limit(limit)).scalars(),
                    ]
                )
            )
            return apply_early_events(conn, ids, now)

    def remember_contacts(
        self, provider: str, pairs: Iterable[tuple[str, str]], *, now: datetime | None = None
    ) -> None:
        """Remember the (phone, user id) pairs webhooks named together; a user's latest phone wins."""
        rows = {user_id: phone for phone, user_id in pairs}
        if not rows:
            return
        now = now or utcnow()
        with self.begin() as conn:
            upsert = _dialect_insert(conn)(contacts)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[contacts.c.provider, contacts.c.user_id],
                    set_={"phone": upsert.excluded.phone, "learned_at": upsert.excluded.learned_at},
                ),
                [
                    {"provider": provider, "user_id": user_id, "phone": phone, "learned_at": now}
                    for user_id, phone in rows.items()
                ],
            )

    def contact_names(self, provider: str, names: Iterable[str]) -> dict[str, str]:
        """For each phone number or user id among ``names`` that the ledger knows, the other name
        of the same user (the latest one learned)."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(contacts.c.user_id, contacts.c.phone)
                .where(
                    contacts.c.provider == provider,
                    contacts.c.user_id.in_(wanted) | contacts.c.phone.in_(wanted),
                )
                .order_by(contacts.c.learned_at)
            ).all()
        for user_id, phone in rows:
            if user_id in wanted:
                found[user_id] = phone
            if phone in wanted:
                found[phone] = user_id
        return found

    def count_early_events(self) -> int:
        """How many webhook events are kept waiting for their message's send to be recorded."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count(func.distinct(early_events.c.event_key))).select_from(early_events)
            ).scalar_one()

    def _apply_webhook_event(
        self,
        provider: str,
        event_key: str,
        ref: MessageRef,
        kind: EventKind,
        event: dict[str, Any],
        now: datetime | None,
    ) -> WebhookOutcome:
        now = now or utcnow()
        event_key = _stored_key(event_key)
        try:
            with self.begin() as conn:
                conn.execute(
                    insert(webhook_events),
                    {"provider": provider, "event_key": event_key, "received_at": now},
                )
                record = _find_by_ref(conn, provider, ref) if ref else None
                if record is None or (kind == "status" and record.state in _NOT_RECORDED_YET):
                    if not ref:
                        return WebhookOutcome(duplicate=False, message=None, changed=False)
                    _keep(conn, provider, event_key, ref, kind, event, now)
                    return WebhookOutcome(duplicate=False, message=None, changed=False, kept=True)
                changed = _APPLY[kind](conn, record, event, now)
                row = conn.execute(select(messages).where(messages.c.id == record.id)).one()
                return WebhookOutcome(duplicate=False, message=message_record(row), changed=changed)
        except IntegrityError:
            if not self._seen(provider, event_key):
                raise
            return WebhookOutcome(duplicate=True, message=None, changed=False)

    def _seen(self, provider: str, event_key: str) -> bool:
        with self.engine.connect() as conn:
            seen = conn.execute(
                select(func.count())
                .select_from(webhook_events)
                .where(webhook_events.c.provider == provider, webhook_events.c.event_key == event_key)
            ).scalar_one()
        return bool(seen)


def _stored_key(event_key: str) -> str:
    """The key as the ledger stores it: a longer one than the column holds by its digest."""
    if len(event_key) > 255:
        return "sha256:" + hashlib.sha256(event_key.encode()).hexdigest()
    return event_key


_NOT_RECORDED_YET = (State.PENDING, State.SENDING)
_DROP_BATCH = 2000
_MAX_DROP_BATCHES = 1000


def apply_early_events(conn: Connection, message_ids: list[str], now: datetime) -> list[EarlyApplied]:
    """Apply the kept webhook events that name these messages, in the order they were received,
    through the state machine, and forget them. Called in the transaction that records the
    messages' sends (their provider ids)."""
    if not message_ids:
        return []
    # Nearly always none are kept: one probe then spares the two look-ups by id.
    if conn.execute(select(early_events.c.id).limit(1)).first() is None:
        return []
    by_provider_id = (
        select(early_events, messages.c.id.label("for_message"))
        .join(
            messages,
            (messages.c.provider == early_events.c.provider)
            & (messages.c.provider_message_id == early_events.c.provider_message_id),
        )
        .where(messages.c.id.in_(message_ids))
    )
    by_our_id = (
        select(early_events, messages.c.id.label("for_message"))
        .join(
            messages,
            (messages.c.provider == early_events.c.provider) & (messages.c.id == early_events.c.message_id),
        )
        .where(messages.c.id.in_(message_ids))
    )
    rows = [*conn.execute(by_provider_id).all(), *conn.execute(by_our_id).all()]
    if not rows:
        return []
    first_rows: dict[tuple[str, str], Any] = {}
    for row in sorted(rows, key=lambda row: (aware(row.received_at), row.id)):
        first_rows.setdefault((row.provider, row.event_key), row)
    applied: list[EarlyApplied] = []
    for row in first_rows.values():
        current = conn.execute(select(messages).where(messages.c.id == row.for_message)).one()
        record = message_record(current)
        changed = _APPLY[row.kind](conn, record, row.event, now)
        if changed and row.event.get("reason") == "opted_out" and record.recipient:
            # In the same transaction: an opt-out is never lost, even if the worker dies next.
            pair = [(record.sender, record.recipient)]
            add_suppressions(conn, pair, reason="opted out (provider)", source="provider", now=now)
        if changed:
            record = message_record(conn.execute(select(messages).where(messages.c.id == record.id)).one())
        applied.append(EarlyApplied(row.kind, record, changed, row.event.get("reason")))
    for provider, event_key in first_rows:
        conn.execute(
            delete(early_events).where(
                early_events.c.provider == provider, early_events.c.event_key == event_key
            )
        )
    return applied


def _dialect_insert(conn: Connection) -> Callable[..., Any]:
    return postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _keep(
    conn: Connection,
    provider: str,
    event_key: str,
    ref: MessageRef,
    kind: EventKind,
    event: dict[str, Any],
    now: datetime,
) -> None:
    base = {"provider": provider, "event_key": event_key, "kind": kind, "event": event, "received_at": now}
    rows = [
        {**base, "message_id": None, "provider_message_id": pmid[:255]} for pmid in ref.provider_message_ids
    ]
    # Our ids are UUIDs; anything longer (an unsigned post-back field) names none of our messages.
    if ref.message_id and len(ref.message_id) <= messages.c.id.type.length:
        rows.append({**base, "message_id": ref.message_id, "provider_message_id": None})
    if rows:
        conn.execute(insert(early_events), rows)


def _apply_status(conn: Connection, record: MessageRecord, event: dict[str, Any], at: datetime) -> bool:
    to_state = State(event["to_state"])
    failed = to_state is State.FAILED
    reason = event.get("reason") if failed else None
    values = (
        {
            "provider_error_code": event.get("provider_error_code"),
            "provider_error_message": event.get("provider_error_message"),
        }
        if failed
        else {}
    )
    if reopens_for_template(record, to_state, reason):
        detail = {
            **(event.get("detail") or {}),
            "next": "the fallback template goes instead",
            "interactive_provider_message_id": record.provider_message_id,
            "provider_error_message": event.get("provider_error_message"),
        }
        if writer.reopen_for_template(conn, record.id, now=at, detail=detail):
            return True
    current = record.state
    for _ in range(3):  # another event for this message may commit between our steps
        if to_state not in ALLOWED[current]:
            return False
        moved = writer.move_one(
            conn,
            record.id,
            current,
            to_state,
            now=at,
            reason=reason,
            detail=event.get("detail"),
            values=values,
        )
        if moved is not None:
            return True
        current = State(conn.execute(select(messages.c.state).where(messages.c.id == record.id)).scalar_one())
    return False


def _apply_reply(conn: Connection, record: MessageRecord, event: dict[str, Any], at: datetime) -> bool:
    reply_title = event.get("reply_title")
    conn.execute(
        update(messages)
        .where(messages.c.id == record.id)
        .values(
            reply_id=event["reply_id"][:256], reply_title=(reply_title or "")[:256] or None, replied_at=at
        )
    )
    return True


_APPLY: dict[str, Callable[[Connection, MessageRecord, dict[str, Any], datetime], bool]] = {
    "status": _apply_status,
    "reply": _apply_reply,
}


def _find_by_ref(conn: Connection, provider: str, ref: MessageRef) -> MessageRecord | None:
    if ref.message_id:
        row = conn.execute(
            select(messages).where(messages.c.id == ref.message_id, messages.c.provider == provider)
        ).one_or_none()
        if row is not None:
            return message_record(row)
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
            return message_record(row)
    return None
