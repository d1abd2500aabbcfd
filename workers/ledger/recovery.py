"""The reconciler's queries: lost ``pending`` messages and messages stuck in ``sending``.

Every change here is one conditional UPDATE ... RETURNING: of two reconcilers that read the same
rows, only the one whose UPDATE matched a row acts on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select, tuple_, update
from wadispatch.ledger import writer
from wadispatch.ledger.database import Database
from wadispatch.ledger.records import aware
from wadispatch.ledger.schema import campaign_allows_sending, in_state, messages
from wadispatch.states import State


class RecoveryQueries(Database):
    """What the reconciler reads and settles."""

    def existing_ids(self, message_ids: list[str]) -> set[str]:
        """The ids among these that the ledger knows, whatever their state."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(messages.c.id).where(messages.c.id.in_(message_ids))).scalars())

    def stale_pending_senders(self, cutoff: datetime) -> list[tuple[str, str | None]]:
        """The (provider, sender) pairs that have ``pending`` messages untouched since ``cutoff``
        (perhaps not due, or in a paused campaign: :meth:`stale_pending_page` tells).

        Only columns of ``ix_messages_state_sender_updated_at``: one pass over the index, no row read.
        """
        with self.engine.connect() as conn:
            query = (
                select(messages.c.provider, messages.c.sender)
                .where(in_state(State.PENDING), messages.c.updated_at < cutoff)
                .distinct()
            )
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
        they were last touched (queued); ``after``: the last (updated_at, id) of the previous page.

        A range of ``ix_messages_state_sender_updated_at`` read in its order: the keyset is one
        row-value comparison, which both databases seek to (an ``OR`` of two comparisons is not).
        """
        sender_is = messages.c.sender.is_(None) if sender is None else messages.c.sender == sender
        conditions = [*_stale_pending(cutoff), messages.c.provider == provider, sender_is]
        if after is not None:
            last = tuple_(
                literal(after[0], messages.c.updated_at.type), literal(after[1], messages.c.id.type)
            )
            conditions.append(tuple_(messages.c.updated_at, messages.c.id) > last)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(messages.c.id, messages.c.updated_at)
                .where(*conditions)
                .order_by(messages.c.updated_at, messages.c.id)
                .limit(limit)
            ).all()
        return [(row.id, aware(row.updated_at)) for row in rows]

    def expired_pending_ids(self, now: datetime, limit: int) -> list[str]:
        """Up to ``limit`` ``pending`` messages whose ``expires_at`` is ``now`` or before."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(messages.c.id)
                    # Through ix_messages_expires_at: most pending messages have no validity.
                    .where(in_state(State.PENDING, by_id=True), messages.c.expires_at <= now)
                    .limit(limit)
                ).scalars()
            )

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

    def stuck_sending_ids(self, cutoff: datetime, limit: int, *, requested: bool | None = None) -> list[str]:
        """Up to ``limit`` messages ``sending`` since before ``cutoff``, oldest first (``requested``:
        only those whose request did, or did not, leave)."""
        with self.engine.connect() as conn:
            query = (
                select(messages.c.id)
                .where(*_stuck_sending(cutoff, requested=requested))
                .order_by(messages.c.updated_at)
                .limit(limit)
            )
            return list(conn.execute(query).scalars())

    def count_stuck_sending(self, cutoff: datetime, *, requested: bool | None = None) -> int:
        """How many messages are ``sending`` since before ``cutoff`` (``requested``: only those
        whose request did, or did not, leave)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(messages).where(*_stuck_sending(cutoff, requested=requested))
            ).scalar_one()

    def requeue_never_requested(
        self, message_ids: list[str], cutoff: datetime, now: datetime, *, reason: str, detail: dict[str, Any]
    ) -> list[str]:
        """Move these messages back to ``pending`` if they are still stuck in ``sending`` without
        their request having left (a dead worker's claim); give their attempt back. Return those
        moved: sending them is safe."""
        return self._move_claims(
            message_ids,
            State.PENDING,
            _claimed_before(cutoff, requested=False),
            now=now,
            reason=reason,
            detail=detail,
            refund_attempt=True,
        )

    def expire_never_requested(
        self,
        message_ids: list[str],
        cutoff: datetime,
        now: datetime,
        *,
        created_before: datetime,
        detail: dict[str, Any],
    ) -> list[str]:
        """Fail ``expired`` those of these messages stuck in ``sending`` without their request
        having left and past their validity (``expires_at``) or, without one, created before
        ``created_before``: too old to send any more, whatever keeps stranding them. Their attempt
        is given back. Return those moved."""
        too_old = (messages.c.expires_at.is_(None) & (messages.c.created_at < created_before)) | (
            messages.c.expires_at <= now
        )
        return self._move_claims(
            message_ids,
            State.FAILED,
            [*_claimed_before(cutoff, requested=False), too_old],
            now=now,
            reason="expired",
            detail=detail,
            refund_attempt=True,
        )

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
        """Move these messages, if still stuck in ``sending`` with their request sent (its answer
        unknown), to ``to_state``; return those moved.

        ``max_attempts`` limits the move to messages with fewer attempts (a resend's budget); such
        a move (back to ``pending``, to be sent again) never takes a fallback template, which is
        sent at most once whatever the policy: those fail instead.
        """
        conditions = _claimed_before(cutoff, requested=True)
        if max_attempts is not None:
            conditions.append(messages.c.attempts < max_attempts)
        if to_state is State.PENDING:
            conditions.append(messages.c.sent_as.is_(None))
        return self._move_claims(message_ids, to_state, conditions, now=now, reason=reason, detail=detail)

    def _move_claims(
        self,
        message_ids: list[str],
        to_state: State,
        where: list[Any],
        *,
        now: datetime,
        reason: str,
        detail: dict[str, Any],
        refund_attempt: bool = False,
    ) -> list[str]:
        """Move these messages from ``sending`` to ``to_state`` where they match ``where``; the ids moved."""
        with self.begin() as conn:
            moved = writer.move(
                conn,
                message_ids,
                State.SENDING,
                to_state,
                now=now,
                where=where,
                reason=reason,
                detail=detail,
                values={"next_attempt_at": None},
                refund_attempt=refund_attempt,
            )
        return [settled.message_id for settled in moved]


def _stale_pending(cutoff: datetime, *, by_id: bool = False) -> list[Any]:
    """Pending, due since before ``cutoff``, untouched since then and free to be sent (outside a
    campaign, or its campaign running): its job may be lost."""
    return [
        in_state(State.PENDING, by_id=by_id),
        messages.c.updated_at < cutoff,
        messages.c.next_attempt_at.is_(None) | (messages.c.next_attempt_at < cutoff),
        # A message held for its campaign's start or send window has no job until its time.
        messages.c.held_until.is_(None) | (messages.c.held_until < cutoff),
        # A paused campaign's messages wait; a cancelled one's are swept.
        campaign_allows_sending(by_id=by_id),
    ]


def _stuck_sending(cutoff: datetime, *, requested: bool | None = None) -> list[Any]:
    return [in_state(State.SENDING), *_claimed_before(cutoff, requested=requested)]


def _claimed_before(cutoff: datetime, *, requested: bool | None = None) -> list[Any]:
    """Claimed before ``cutoff`` and not settled since; ``requested``: its request did (or did
    not) leave (the caller checks the state)."""
    conditions = [messages.c.updated_at < cutoff]
    if requested is True:
        conditions.append(messages.c.requested_at.is_not(None))
    elif requested is False:
        conditions.append(messages.c.requested_at.is_(None))
    return conditions
