"""The sticky sender of each recipient of a pool campaign, read and written with each batch.

A recipient keeps the sender recorded for it (``sender_assignments``, per provider and recipient)
when that sender is in the campaign's pool; else it gets the pool's least-loaded sender
(:func:`wadispatch.campaigns.pool.assign_senders`) and that becomes its sticky sender. Per batch:
one query for the batch's recipients and one upsert of the new or changed assignments, in the
batch's transaction. Single-sender campaigns never come here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, text
from sqlalchemy.dialects import postgresql, sqlite
from wadispatch.campaigns.pool import assign_senders
from wadispatch.campaigns.store import recipients_in
from wadispatch.ledger import sender_assignments, utcnow

if TYPE_CHECKING:
    from wadispatch.campaigns.ingest import Target


class PoolAssigner:
    """Assigns the senders of one pool campaign's batches; keeps each sender's load between them.

    Ingest records a pool campaign's rows with their filled texts in place of the request
    (:meth:`texts`); :meth:`__call__` then writes each row's sender and its request, built from the
    texts with that sender's :class:`~wadispatch.campaigns.ingest.RequestText`.
    """

    def __init__(self, target: Target) -> None:
        from wadispatch.campaigns.ingest import RequestText

        assert target.pool is not None
        self.provider = target.provider
        self.pool = target.pool
        self.load = [0] * len(self.pool)
        self.requests = {
            sender: RequestText(replace(target, sender=sender, pool=None)) for sender in self.pool
        }

    @staticmethod
    def texts(recipient: str, texts: list[str]) -> Any:
        """What ingest keeps as a row's request until its sender is known: the filled texts."""
        return texts

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        recipients = [row["recipient"] for row in rows]
        sticky = _sticky(conn, self.provider, recipients)
        senders = assign_senders(recipients, sticky, self.pool, self.load)
        changed: list[dict[str, Any]] = []
        now = utcnow()
        for row, sender in zip(rows, senders, strict=True):
            row["sender"] = sender
            row["request"] = self.requests[sender](row["recipient"], row["request"])
            if sticky.get(row["recipient"]) != sender:
                changed.append(
                    {
                        "provider": self.provider,
                        "recipient": row["recipient"],
                        "sender": sender,
                        "assigned_at": now,
                    }
                )
        if changed:
            _upsert(conn, changed)


def _sticky(conn: Connection, provider: str, recipients: list[str]) -> dict[str, str]:
    """The recorded sender of each of these recipients that has one."""
    table = sender_assignments
    condition, value = recipients_in(conn, "recipient")
    if condition is None:
        query = select(table.c.recipient, table.c.sender).where(
            table.c.provider == provider, table.c.recipient.in_(recipients)
        )
        found = conn.execute(query)
    else:
        query = text(f"SELECT recipient, sender FROM {table.name} WHERE provider = :provider AND {condition}")
        found = conn.execute(query, {"provider": provider, "recipients": value(recipients)})
    return {recipient: sender for recipient, sender in found}


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(sender_assignments)
    statement = statement.on_conflict_do_update(
        index_elements=["provider", "recipient"],
        set_={"sender": statement.excluded.sender, "assigned_at": statement.excluded.assigned_at},
    )
    conn.execute(statement, rows)
