"""The sticky sender of each recipient of a pool campaign, read and written with each batch.

A recipient keeps the sender recorded for it (``sender_assignments``, per provider and recipient)
when that sender is in the campaign's pool; else it gets the pool's least-loaded sender
(:func:`wadispatch.campaigns.pool.assign_senders`) and that becomes its sticky sender. Per batch:
one query for the batch's recipients and one upsert of the new or changed assignments, in the
batch's transaction (:func:`~wadispatch.campaigns.store.sticky_senders`,
:func:`~wadispatch.campaigns.store.record_senders`). Single-sender campaigns never come here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from wadispatch.campaigns import store
from wadispatch.campaigns.pool import assign_senders

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
        sticky = store.sticky_senders(conn, self.provider, recipients)
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
            store.record_senders(conn, self.provider, changed)
