"""The sticky sender of each recipient of a pool campaign, read and written with each batch.

A recipient keeps the sender recorded for it (``sender_assignments``, per provider and recipient)
when that sender is in the campaign's pool; else it gets the pool's least-loaded sender
(:func:`wadispatch.campaigns.pool.assign_senders`) and that becomes its sticky sender. Per batch:
one query for the batch's recipients and one upsert of the new or changed assignments, in the
batch's transaction. Single-sender campaigns never come here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select, text
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
        changed: list[tuple[str, str]] = []
        requests = self.requests
        for row, sender in zip(rows, senders, strict=True):
            recipient = row["recipient"]
            row["sender"] = sender
            row["request"] = requests[sender](recipient, row["request"])
            if sticky.get(recipient) != sender:
                changed.append((recipient, sender))
        if changed:
            _upsert(conn, self.provider, changed)


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


def _upsert(conn: Connection, provider: str, pairs: list[tuple[str, str]]) -> None:
    """Record ``(recipient, sender)`` pairs as the recipients' senders, in one statement.

    The pairs go to the database as one value (JSON on SQLite, arrays on PostgreSQL), as the
    batch's recipients do for the look-up: a row of parameters each costs more than the rest.
    """
    table = sender_assignments
    conflict = (
        "ON CONFLICT (provider, recipient) DO UPDATE SET sender = excluded.sender, "
        "assigned_at = excluded.assigned_at"
    )
    stamp = bindparam("at", utcnow(), type_=table.c.assigned_at.type)
    if conn.dialect.name == "postgresql":
        query = text(
            f"INSERT INTO {table.name} (provider, recipient, sender, assigned_at) "
            "SELECT :provider, recipient, sender, :at "
            f"FROM unnest(CAST(:recipients AS text[]), CAST(:senders AS text[])) AS pairs(recipient, sender) "
            + conflict
        ).bindparams(stamp)
        recipients, senders = zip(*pairs, strict=True)
        conn.execute(query, {"provider": provider, "recipients": list(recipients), "senders": list(senders)})
    else:
        # WHERE true: SQLite's parser needs it between a SELECT and its ON CONFLICT.
        query = text(
            f"INSERT INTO {table.name} (provider, recipient, sender, assigned_at) "
            "SELECT :provider, json_extract(value, '$[0]'), json_extract(value, '$[1]'), :at "
            f"FROM json_each(:pairs) WHERE true {conflict}"
        ).bindparams(stamp)
        conn.execute(query, {"provider": provider, "pairs": json.dumps(pairs)})
