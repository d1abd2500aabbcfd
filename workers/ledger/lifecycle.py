"""A message's life in the ledger: recorded ``pending``, claimed, settled, read back."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from wadispatch.errors import StaleState, UnknownMessage
from wadispatch.ids import new_message_id
from wadispatch.ledger import writer
from wadispatch.ledger.database import Database
from wadispatch.ledger.records import (
    Change,
    MessageRecord,
    TransitionRecord,
    aware,
    message_record,
    utcnow,
)
from wadispatch.ledger.schema import (
    campaign_allows_sending,
    campaign_recipient_not_suppressed,
    in_state,
    messages,
    transitions,
)
from wadispatch.ledger.webhooks import EarlyApplied, apply_early_events
from wadispatch.messages import SendRequest
from wadispatch.states import State
from wadispatch.validity import single_message_expiry


class MessageLifecycle(Database):
    """Message records and their state changes, all written through :mod:`.writer`."""

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
        row = _new_row(request, now, request_as_text=True)
        try:
            with self.begin_driver() as driver:
                writer.insert_pending_one(driver, self.engine.dialect, row, now)
        except IntegrityError:
            if request.idempotency_key is None:
                raise
            existing = self.find_by_idempotency_key(request.idempotency_key)
            if existing is None:
                raise
            return existing, False
        return row["id"], True

    def record_pending_many(
        self, requests: list[SendRequest], *, now: datetime | None = None
    ) -> list[tuple[str, bool]]:
        """Record many messages as ``pending`` in one transaction; ``(message_id, created)`` each.

        Requests whose idempotency key is already used (in the ledger or earlier in the same
        list) get the first message's id and ``created=False``; nothing is written for them.
        """
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
            row = _new_row(request, now)
            if key is not None:
                known[key] = row["id"]
            rows.append(row)
            results.append((row["id"], True))
        if not rows:
            return results
        try:
            with self.begin() as conn:
                writer.insert_pending(conn, rows, now)
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
        """The id of the message recorded with this idempotency key, if any."""
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
        return sorted((message_record(row) for row in rows), key=lambda record: order[record.id])

    def claim_many(
        self, records: list[MessageRecord], *, now: datetime | None = None, sent_as: str | None = None
    ) -> list[MessageRecord]:
        """Atomically move the due ``pending`` messages among these to ``sending``.

        One conditional UPDATE for all of them: a message another worker claimed first is not
        returned, nor is a campaign message whose recipient is on the suppression list (see
        :func:`wadispatch.campaigns.store.fail_suppressed`). The claims' transitions are logged in
        the same transaction. Returns the given records as claimed (state and attempts updated),
        without reading them again. ``sent_as`` (``template``) records, with the claim, that they
        go as their fallback template.
        """
        if not records:
            return []
        now = now or utcnow()
        due = (messages.c.next_attempt_at.is_(None)) | (messages.c.next_attempt_at <= now)
        values: dict[str, Any] = {"next_attempt_at": None, "requested_at": None}
        if sent_as is not None:
            values["sent_as"] = sent_as
        # Never an expired message, nor one held for its send window: a late job cannot send it.
        valid = messages.c.expires_at.is_(None) | (messages.c.expires_at > now)
        released = messages.c.held_until.is_(None) | (messages.c.held_until <= now)
        with self.begin() as conn:
            moved = writer.move(
                conn,
                [record.id for record in records],
                State.PENDING,
                State.SENDING,
                now=now,
                where=[
                    due,
                    valid,
                    released,
                    campaign_allows_sending(by_id=True),
                    campaign_recipient_not_suppressed(by_id=True),
                ],
                values=values,
                detail={"sent_as": sent_as, "window": "known closed"} if sent_as else None,
                count_attempt=True,
            )
        attempts = {claim.message_id: claim.attempt for claim in moved}
        return [
            dataclasses.replace(
                record,
                state=State.SENDING,
                attempts=attempts[record.id],
                next_attempt_at=None,
                requested_at=None,
                updated_at=now,
                sent_as=sent_as or record.sent_as,
            )
            for record in records
            if record.id in attempts
        ]

    def fail_expired(self, message_ids: list[str], *, now: datetime | None = None) -> list[str]:
        """Fail those of these ``pending`` messages whose expiry has passed (reason ``expired``);
        return their ids. Whatever their campaign's status: an expired message is never sent."""
        if not message_ids:
            return []
        now = now or utcnow()
        with self.begin() as conn:
            moved = writer.move(
                conn,
                message_ids,
                State.PENDING,
                State.FAILED,
                now=now,
                where=[messages.c.expires_at <= now],
                reason="expired",
                detail={"gave_up": "validity", "provider_request": False},
            )
        return [item.message_id for item in moved]

    def hold(self, holds: list[tuple[str, datetime]], *, now: datetime | None = None) -> list[str]:
        """Hold these ``pending`` messages until their time (their send window's next opening): no
        job is queued for them until the release (:mod:`wadispatch.campaigns.release`) at that
        time. Returns the ids held (those still pending)."""
        if not holds:
            return []
        now = now or utcnow()
        by_time: dict[datetime, list[str]] = {}
        for message_id, until in holds:  # one statement per opening: a batch's often share one
            by_time.setdefault(until, []).append(message_id)
        held: list[str] = []
        with self.begin() as conn:
            for until, message_ids in by_time.items():
                held += conn.execute(
                    update(messages)
                    .where(messages.c.id.in_(message_ids), in_state(State.PENDING, by_id=True))
                    .values(held_until=until, updated_at=now)
                    .returning(messages.c.id)
                ).scalars()
        return held

    def apply_many(self, changes: list[Change], *, now: datetime | None = None) -> list[str]:
        """Apply many state changes in one transaction; return the ids that were stale.

        Every change is checked against the state machine first (an illegal one raises and
        nothing is written). A message no longer in its change's ``from_state`` is left alone and
        its id returned; the others are applied, each exactly as in a batch with no stale one.
        """
        if not changes:
            return []
        now = now or utcnow()
        with self.begin() as conn:  # an illegal change raises in the writer: nothing is written
            if writer.apply_changes(conn, changes, now):
                return []
            # Someone else moved some of them (rare): undo, then apply them one at a time.
            conn.rollback()
        with self.begin() as conn:
            return [change.message_id for change in changes if not writer.apply_change(conn, change, now)]

    def record_progress(
        self, claims: list[tuple[str, datetime]], changes: list[Change], *, now: datetime | None = None
    ) -> Progress:
        """Mark requests about to leave and apply the answers that came, in one transaction.

        ``claims`` are (message id, time of its claim) of messages whose request is about to
        leave (:func:`~wadispatch.ledger.writer.mark_requested`); ``changes`` settle attempts
        whose answer arrived. Webhook events kept because they came before a send was recorded
        are applied in the same transaction as that send's ``sent``.
        """
        now = now or utcnow()
        with self.begin() as conn:
            marked = writer.mark_requested(conn, claims, now)
            if writer.apply_changes(conn, changes, now):
                return Progress(marked, set(), apply_early_events(conn, _sent_ids(changes), now))
            conn.rollback()
        with self.begin() as conn:
            marked = writer.mark_requested(conn, claims, now)
            stale = {change.message_id for change in changes if not writer.apply_change(conn, change, now)}
            sent = [message_id for message_id in _sent_ids(changes) if message_id not in stale]
            return Progress(marked, stale, apply_early_events(conn, sent, now))

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
        """Move a message ``from_state → to_state`` and log it, or raise and write nothing.

        ``fields`` may set the provider fields and ``next_attempt_at``
        (:data:`~wadispatch.ledger.writer.TRANSITION_FIELDS`).
        """
        now = now or utcnow()
        with self.begin() as conn:
            attempt = writer.move_one(
                conn, message_id, from_state, to_state, now=now, reason=reason, detail=detail, values=fields
            )
            if attempt is None:
                current = conn.execute(
                    select(messages.c.state).where(messages.c.id == message_id)
                ).scalar_one_or_none()
                if current is None:
                    raise UnknownMessage(message_id)
                raise StaleState(f"message {message_id} is {current}, not {from_state}")

    def get(self, message_id: str) -> MessageRecord:
        """The message's record; :class:`UnknownMessage` when there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(messages).where(messages.c.id == message_id)).one_or_none()
        if row is None:
            raise UnknownMessage(message_id)
        return message_record(row)

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
                at=aware(row.at),
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
        return [message_record(row) for row in rows]


@dataclass(frozen=True)
class Progress:
    """What :meth:`MessageLifecycle.record_progress` wrote."""

    marked: set[str]
    """The claims marked requested: only their requests may leave."""
    stale: set[str]
    """The changes not applied: their message had moved on."""
    early: list[EarlyApplied]
    """Webhook events that had come early, applied now that their sends are recorded."""


def _sent_ids(changes: list[Change]) -> list[str]:
    return [change.message_id for change in changes if change.to_state is State.SENT]


def _new_row(request: SendRequest, now: datetime, *, request_as_text: bool = False) -> dict[str, Any]:
    return {
        "id": new_message_id(),
        "provider": request.provider,
        "sender": request.sender,
        "recipient": request.to,
        "conversation_id": str(request.conversation_id) if request.conversation_id else None,
        # As text for the driver: pydantic's own JSON, which reads back as the same object.
        "request": (
            request.model_dump_json(exclude_none=True, exclude={"fallback"})
            if request_as_text
            else request.model_dump(mode="json", exclude_none=True, exclude={"fallback"})
        ),
        # Kept beside the request: the engine sends it only when the window is closed.
        "fallback": _fallback(request, as_text=request_as_text),
        "idempotency_key": request.idempotency_key,
        "expires_at": _expiry(request, now),
        "created_at": now,
        "updated_at": now,
    }


def _fallback(request: SendRequest, *, as_text: bool) -> Any:
    if request.fallback is None:
        return None
    return request.fallback.model_dump_json() if as_text else request.fallback.model_dump(mode="json")


def _expiry(request: SendRequest, now: datetime) -> datetime | None:
    if request.valid_for_seconds is None and request.expires_at is None:
        return None
    expiry, _ = single_message_expiry(request.valid_for_seconds, request.expires_at, now)
    return expiry
