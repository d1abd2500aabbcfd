"""Sender pools: a campaign sent from several senders of one provider, each recipient from one of them.

Pure: which senders a campaign may use (:func:`check_senders`) and which sender each recipient of
a batch gets (:func:`assign_senders`). The ledger side (the sticky assignments, read and written
with each batch) is :mod:`wadispatch.campaigns.assignments`.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from wadispatch.campaigns.template import Template
from wadispatch.errors import FieldError, MessageValidationError

MAX_POOL_SIZE = 50
"""The most senders one campaign may take."""


def check_senders(
    template: Any, *, provider: str, sender: str | None, senders: Sequence[Any] | None
) -> tuple[Template, str | None, tuple[str, ...] | None]:
    """Check the template and the campaign's sender(s); ``(template, sender, pool)``.

    ``sender`` alone (or neither) is the single-sender campaign, checked as before: ``pool`` is
    None. ``senders`` (a list) is a pool: at least one sender, at most :data:`MAX_POOL_SIZE`, no
    repeats, each a sender the provider takes (the check a single sender gets). A list of one is
    a single-sender campaign. Raises :class:`MessageValidationError` naming every broken rule by
    field (``senders``, ``senders[2]``, ``interactive...``).
    """
    if senders is None:
        return Template.parse(template, provider=provider, sender=sender), sender, None
    if sender is not None:
        raise MessageValidationError([FieldError("senders", "give sender or senders, not both")])
    pool = _pool(senders)
    checked: Template | None = None
    errors: list[FieldError] = []
    for index, candidate in enumerate(pool):
        try:
            parsed = Template.parse(template, provider=provider, sender=candidate)
        except MessageValidationError as exc:
            if index == 0:  # the template's own errors once, the senders' for each
                errors += [error for error in exc.errors if error.path != "sender"]
            errors += [FieldError(f"senders[{index}]", e.rule) for e in exc.errors if e.path == "sender"]
            continue
        checked = checked or parsed
    if errors or checked is None:
        raise MessageValidationError(errors)
    if len(pool) == 1:
        return checked, pool[0], None
    return checked, pool[0], pool


def _pool(senders: Sequence[Any]) -> tuple[str, ...]:
    """The senders as given (stripped), or every problem with the list."""
    if isinstance(senders, str) or not isinstance(senders, Sequence):
        raise MessageValidationError([FieldError("senders", "must be a list of sender handles")])
    if not senders:
        raise MessageValidationError([FieldError("senders", "must list at least one sender")])
    if len(senders) > MAX_POOL_SIZE:
        rule = f"at most {MAX_POOL_SIZE} senders (got {len(senders)})"
        raise MessageValidationError([FieldError("senders", rule)])
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    pool: list[str] = []
    for index, value in enumerate(senders):
        handle = value.strip() if isinstance(value, str) else ""
        if not handle:
            errors.append(FieldError(f"senders[{index}]", "must be a non-empty string"))
        elif handle in seen:
            errors.append(FieldError(f"senders[{index}]", f"repeats senders[{seen[handle]}] ({handle})"))
        else:
            seen[handle] = index
        pool.append(handle)
    if errors:
        raise MessageValidationError(errors)
    return tuple(pool)


def assign_senders(
    recipients: Sequence[str], sticky: Mapping[str, str], pool: Sequence[str], load: list[int]
) -> list[str]:
    """The sender of each recipient, in order: its sticky sender when that is in ``pool``, else the
    least-loaded sender (fewest messages assigned so far; ties go to the earlier in ``pool``).

    ``load[i]`` counts the messages assigned to ``pool[i]`` so far in this campaign; it is updated
    in place, so that the next batch goes on from there.
    """
    index_of = {sender: index for index, sender in enumerate(pool)}
    # Entries (load, index) go stale when a sticky recipient adds to a sender: skipped when popped.
    heap = [(count, index) for index, count in enumerate(load)]
    heapq.heapify(heap)
    assigned: list[str] = []
    for recipient in recipients:
        index = index_of.get(sticky.get(recipient, ""))
        if index is None:
            while heap[0][0] != load[heap[0][1]]:
                heapq.heappop(heap)
            index = heap[0][1]
        load[index] += 1
        heapq.heappush(heap, (load[index], index))
        assigned.append(pool[index])
    return assigned
