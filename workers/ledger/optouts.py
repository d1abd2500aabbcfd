"""The suppression list's one insert, shared by campaigns and by opt-outs from providers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from wadispatch.ledger.schema import SUPPRESS_ALL_SENDERS, suppressions


def add_suppressions(
    conn: Connection,
    pairs: Iterable[tuple[str | None, str]],
    *,
    reason: str | None,
    source: str,
    now: datetime,
) -> int:
    """Add ``(sender or None for all senders, recipient)`` pairs in the caller's transaction; an
    existing pair is left as it is. Returns how many were new."""
    rows = {
        (sender or SUPPRESS_ALL_SENDERS, recipient): {
            "sender": sender or SUPPRESS_ALL_SENDERS,
            "recipient": recipient,
            "reason": reason,
            "source": source,
            "created_at": now,
        }
        for sender, recipient in pairs
    }
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(suppressions).on_conflict_do_nothing(index_elements=["sender", "recipient"])
    return len(conn.execute(statement.returning(suppressions.c.id), list(rows.values())).all())
