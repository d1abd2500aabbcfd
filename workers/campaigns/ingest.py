"""Reading a campaign's rows into the ledger in batches: fill, normalise, skip, record.

Per row the work is small: the template's placeholders filled and their texts checked
(:class:`~wadispatch.campaigns.template.Template`), the phone number normalised
(:class:`~wadispatch.campaigns.phones.PhoneNormaliser`); per batch one transaction
(:func:`wadispatch.campaigns.store.add_batch`). Memory holds one batch, whatever the file's size.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wadispatch.campaigns import store
from wadispatch.campaigns.phones import PhoneError, PhoneNormaliser
from wadispatch.campaigns.reader import ReadResult
from wadispatch.campaigns.template import RowError, Template
from wadispatch.ledger import Ledger, utcnow
from wadispatch.rules import recipient_rule


@dataclass
class IngestCounts:
    """What has been read so far."""

    rows_read: int = 0
    accepted: int = 0
    invalid: int = 0
    duplicate: int = 0
    suppressed: int = 0
    last_row: int = 0
    """The row number of the last row read."""

    def add(self, rows: int, invalid: int, recorded: tuple[int, int, int], last_row: int) -> None:
        self.rows_read += rows
        self.invalid += invalid
        self.accepted += recorded[0]
        self.duplicate += recorded[1]
        self.suppressed += recorded[2]
        self.last_row = last_row


@dataclass
class Target:
    """Where every message of the campaign goes, and how each row becomes one."""

    campaign_id: str
    provider: str
    sender: str | None
    template: Template
    phone_column: str
    normalise: PhoneNormaliser

    def message_row(
        self, row_number: int, recipient: str, interactive: dict[str, Any], now: Any
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"provider": self.provider, "to": recipient, "interactive": interactive}
        if self.sender is not None:
            request["sender"] = self.sender
        return {
            "id": str(uuid.uuid4()),
            "provider": self.provider,
            "sender": self.sender,
            "recipient": recipient,
            "request": request,
            "created_at": now,
            "updated_at": now,
            "campaign_id": self.campaign_id,
            "campaign_row": row_number,
        }


def ingest(
    ledger: Ledger,
    target: Target,
    rows: Iterable[ReadResult],
    *,
    batch_size: int,
    after_batch: Callable[[IngestCounts], None] | None = None,
    campaign: dict[str, Any] | None = None,
) -> IngestCounts:
    """Record every row: accepted ones as ``pending`` messages, the others as skipped rows.

    ``campaign`` (the campaign's row) is inserted with the first batch, or alone after a file
    without rows: should reading fail before, nothing of the campaign is left.
    """
    counts = IngestCounts()
    messages: list[dict[str, Any]] = []
    skipped: list[store.Skipped] = []
    read = 0
    last_row = 0
    now = utcnow()

    def flush() -> None:
        nonlocal messages, skipped, read, now, campaign
        invalid = len(skipped)
        recorded = store.add_batch(
            ledger, target.campaign_id, target.sender, messages, skipped, read, campaign
        )
        campaign = None
        counts.add(read, invalid, recorded, last_row)
        messages, skipped, read, now = [], [], 0, utcnow()
        if after_batch is not None:
            after_batch(counts)

    for row_number, value in rows:
        read += 1
        last_row = row_number
        if isinstance(value, RowError):
            skipped.append(store.Skipped(row_number, "invalid", str(value)))
        else:
            raw_phone = value[target.phone_column]
            try:
                recipient = target.normalise(raw_phone)
                refused = recipient_rule(target.provider, recipient)
                if refused is not None:
                    raise PhoneError(f"phone: {refused}")
                interactive = target.template.fill(value)
            except (PhoneError, RowError) as exc:
                skipped.append(store.Skipped(row_number, "invalid", str(exc), raw_phone))
            else:
                messages.append(target.message_row(row_number, recipient, interactive, now))
        if read >= batch_size:
            flush()
    if read:
        flush()
    if campaign is not None:
        store.insert_campaign(ledger, campaign)
    return counts
