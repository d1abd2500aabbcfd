"""Webhook events in the ledger: each applied once, statuses through the state machine, replies."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from wadispatch.ledger import writer
from wadispatch.ledger.database import Database
from wadispatch.ledger.records import MessageRecord, message_record, utcnow
from wadispatch.ledger.schema import messages, webhook_events
from wadispatch.states import ALLOWED, State
from wadispatch.webhooks.events import MessageRef


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
        still ``pending`` or ``sending`` (the provider called back before the worker recorded the
        send) is not recorded at all: the outcome says ``too_early``, so that the provider's
        redelivery is applied. The event's key is recorded in the same transaction as the change.
        """
        failed = to_state is State.FAILED
        values = (
            {"provider_error_code": provider_error_code, "provider_error_message": provider_error_message}
            if failed
            else {}
        )
        reason = reason if failed else None

        def apply(conn: Connection, record: MessageRecord, at: datetime) -> bool:
            current = record.state
            if current in (State.PENDING, State.SENDING):
                raise _TooEarly
            for _ in range(3):  # another event for this message may commit between our steps
                if to_state not in ALLOWED[current]:
                    return False
                moved = writer.move_one(
                    conn, record.id, current, to_state, now=at, reason=reason, detail=detail, values=values
                )
                if moved is not None:
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
                record = _find_by_ref(conn, provider, ref) if ref else None
                if record is None:
                    return WebhookOutcome(duplicate=False, message=None, changed=False)
                changed = apply(conn, record, now)
                row = conn.execute(select(messages).where(messages.c.id == record.id)).one()
                return WebhookOutcome(duplicate=False, message=message_record(row), changed=changed)
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
