"""Dead letters in the ledger: jobs no worker could run, kept with why, replayable once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from wadispatch.ledger.database import Database
from wadispatch.ledger.records import aware, utcnow
from wadispatch.ledger.schema import dead_letters


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


class DeadLetters(Database):
    """The dead-letter store."""

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
        """One dead letter, or ``None``."""
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
        created_at=aware(row.created_at),
        replayed_at=aware(row.replayed_at),
    )
