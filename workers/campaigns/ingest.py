"""Reading a campaign's rows into the ledger in batches: fill, normalise, skip, record.

Per row the work is small: the template's placeholders filled and their texts checked
(:meth:`~wadispatch.campaigns.template.Template.texts`), the phone number normalised
(:class:`~wadispatch.campaigns.phones.PhoneNormaliser`), the send request written as JSON text
from a skeleton made once (:class:`RequestText`); per batch one transaction
(:func:`wadispatch.campaigns.store.add_batch`). Memory holds one batch, whatever the file's size.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wadispatch.campaigns import store
from wadispatch.campaigns.assignments import PoolAssigner
from wadispatch.campaigns.fallback import CampaignFallback
from wadispatch.campaigns.holding import Hold, hold_times
from wadispatch.campaigns.phones import PhoneError, PhoneNormaliser
from wadispatch.campaigns.reader import ReadResult
from wadispatch.campaigns.schedule import Schedule
from wadispatch.campaigns.template import RowError, Template
from wadispatch.ids import message_ids
from wadispatch.ledger import Ledger, utcnow
from wadispatch.rules import recipient_rule
from wadispatch.window import Windows

_encode = json.encoder.encode_basestring_ascii  # what json.dumps writes for a string


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
    fallback: CampaignFallback | None = None
    """The template sent instead when a recipient's 24-hour window is closed."""
    pool: tuple[str, ...] | None = None
    """A pool campaign's senders: each row's sender is assigned with its batch
    (:mod:`wadispatch.campaigns.assignments`); ``sender`` is then the first of them."""
    schedule: Schedule | None = None
    """The campaign's start and send window; ``None``: every message is sent at once."""
    expires_at: datetime | None = None
    """Every message's expiry (the campaign's validity)."""
    windows: Windows | None = None
    """The 24-hour windows, read for held messages whose window closes before their opening
    (:func:`wadispatch.campaigns.holding.lapse_plan`)."""

    def request(self, recipient: str, interactive: dict[str, Any]) -> dict[str, Any]:
        """The send request of one recipient."""
        request: dict[str, Any] = {"provider": self.provider, "to": recipient, "interactive": interactive}
        if self.sender is not None:
            request["sender"] = self.sender
        return request

    def message_row(
        self, row_number: int, recipient: str, request: str, message_id: str, fallback: str | None = None
    ) -> dict[str, Any]:
        """The message of one accepted row, as :func:`wadispatch.campaigns.store.add_batch` takes it;
        ``request`` is its send request as JSON text (:class:`RequestText`), ``fallback`` its
        fallback template's (:meth:`CampaignFallback.text`); in a pool campaign, ``request`` is
        the row's filled texts until its sender is assigned."""
        return {
            "id": message_id,
            "provider": self.provider,
            "sender": self.sender,
            "recipient": recipient,
            "request": request,
            "campaign_id": self.campaign_id,
            "campaign_row": row_number,
            "fallback": fallback,
            "expires_at": self.expires_at,
        }


class RequestText:
    """The JSON text of a row's send request, exactly as ``json.dumps(target.request(...))`` writes
    it, without building the request: ``json.dumps`` runs once, on the request with a unique
    stand-in for the recipient and each filled text, and each row's strings, JSON-encoded, take
    the stand-ins' places.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        slots = target.template.slots
        marker = uuid.uuid4().hex
        stand_ins = [f"{marker}.{index}" for index in range(len(slots) + 1)]  # the last: the recipient
        skeleton = json.dumps(target.request(stand_ins[-1], target.template.filled(stand_ins[:-1])))
        pieces = re.split(f'"({marker}\\.[0-9]+)"', skeleton)
        order = [stand_ins.index(name) for name in pieces[1::2]]
        self._order: list[int] | None = order
        if sorted(order) != list(range(len(stand_ins))):
            self._order = None  # a stand-in found in the template itself: build each request instead
        self._format = "%s".join(piece.replace("%", "%%") for piece in pieces[0::2])

    def __call__(self, recipient: str, texts: list[str]) -> str:
        """``texts``: the template's filled texts (:meth:`~wadispatch.campaigns.template.Template.texts`)."""
        if self._order is None:
            return json.dumps(self.target.request(recipient, self.target.template.filled(texts)))
        values = [*texts, recipient]
        return self._format % tuple([_encode(values[index]) for index in self._order])


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
    template, normalise, phone_column = target.template, target.normalise, target.phone_column
    request_text: Callable[[str, list[str]], Any] = RequestText(target)
    assign: store.AssignSenders | None = None
    if target.pool is not None:
        assign = assigner = PoolAssigner(target)
        request_text = assigner.texts  # the request is written once the batch's senders are known
    new_id = message_ids().__next__
    message_row = target.message_row
    suppression_senders = target.pool or target.sender
    schedule = None if target.schedule is None or target.schedule.empty else target.schedule
    now = utcnow()

    def flush() -> None:
        nonlocal messages, skipped, read, campaign
        invalid = len(skipped)
        recorded = store.add_batch(
            ledger, target.campaign_id, suppression_senders, messages, skipped, read, campaign, assign
        )
        if schedule is not None and target.windows is not None:
            _hold_lapsing(ledger, target.windows, target.provider, messages)
        campaign = None
        counts.add(read, invalid, recorded, last_row)
        messages, skipped, read = [], [], 0
        if after_batch is not None:
            after_batch(counts)

    for row_number, value in rows:
        read += 1
        last_row = row_number
        if isinstance(value, RowError):
            skipped.append(store.Skipped(row_number, "invalid", str(value)))
        else:
            raw_phone = value[phone_column]
            try:
                recipient = normalise(raw_phone)
                # A BSUID never starts with "+": only one may be refused by the provider.
                refused = None if recipient[0] == "+" else recipient_rule(target.provider, recipient)
                if refused is not None:
                    raise PhoneError(f"phone: {refused}")
                texts = template.texts(value)
                fallback = None if target.fallback is None else _fallback_text(target, value, texts)
            except (PhoneError, RowError) as exc:
                skipped.append(store.Skipped(row_number, "invalid", str(exc), raw_phone))
            else:
                request = request_text(recipient, texts)
                message = message_row(row_number, recipient, request, new_id(), fallback)
                if schedule is not None:
                    message["held_until"] = schedule.hold_until(recipient, now)
                messages.append(message)
        if read >= batch_size:
            flush()
    if read:
        flush()
    if campaign is not None:
        store.insert_campaign(ledger, campaign)
    return counts


def _hold_lapsing(ledger: Ledger, windows: Windows, provider: str, rows: list[dict[str, Any]]) -> None:
    """Hold the batch's held messages whose 24-hour window closes before their opening until it
    closes instead (those without a fallback template; see :func:`lapse_plan`)."""
    held = [row for row in rows if row.get("held_until") is not None]
    plan = [
        Hold((provider, row["sender"], row["recipient"]), row["held_until"], row.get("fallback") is not None)
        for row in held
    ]
    times = hold_times(plan, windows)
    earlier = [
        (row["id"], until) for row, until in zip(held, times, strict=True) if until != row["held_until"]
    ]
    if earlier:
        ledger.hold(earlier)


def _fallback_text(target: Target, row: dict[str, str], texts: list[str]) -> str:
    fallback = target.fallback
    assert fallback is not None
    interactive = target.template.filled(texts) if fallback.needs_interactive else None
    return fallback.text(row, interactive)
