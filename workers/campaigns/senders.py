"""A campaign's progress per sender: its messages per state and its limit, and the pool's limit.

A single-sender campaign's one sender has the campaign's counts (no query); a pool campaign's are
counted in one query grouped by sender and state. Limits are read from the broker's Redis
(:class:`~wadispatch.campaigns.live.Live`), one sender at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wadispatch.campaigns import store
from wadispatch.campaigns.live import Live, SenderLimit
from wadispatch.states import State


@dataclass(frozen=True)
class SenderProgress:
    """One sender of a campaign: its messages per state and its rate limit."""

    sender: str | None
    states: dict[str, int]
    limit: SenderLimit

    @property
    def remaining(self) -> int:
        """Its messages still ``pending`` or ``sending``."""
        return self.states.get(State.PENDING.value, 0) + self.states.get(State.SENDING.value, 0)

    def as_json(self) -> dict[str, Any]:
        effective = self.limit.effective
        cooldown = self.limit.cooldown_seconds
        return {
            "sender": self.sender,
            "states": self.states,
            "remaining": self.remaining,
            "limit_per_s": round(self.limit.declared, 2),
            "effective_limit_per_s": None if effective is None else round(effective, 2),
            "cooldown_seconds": None if cooldown is None else round(cooldown, 1),
        }


@dataclass(frozen=True)
class PoolLimit:
    """What the campaign's senders may send together."""

    declared: float
    """The sum of the senders' configured limits (as the limiter applies them)."""
    effective: float | None
    """The sum of what the limiter lets each send now; None when one of them cannot be read."""
    cooldown_seconds: float | None
    """The longest cooldown of a sender (None when unknown)."""


def per_sender(
    campaign: store.CampaignRecord,
    states: dict[str, int],
    by_sender: dict[str | None, dict[str, int]],
    live: Live,
) -> list[SenderProgress]:
    """The campaign's senders in pool order (its one sender when it has no pool).

    ``states``: the campaign's messages per state, which are its one sender's; ``by_sender``:
    each sender's messages per state (:func:`wadispatch.campaigns.store.state_counts`).
    """
    if campaign.senders is None:
        return [SenderProgress(campaign.sender, states, live.sender(campaign.provider, campaign.sender))]
    counts: dict[str | None, dict[str, int]] = {sender: {} for sender in campaign.senders}
    for sender, sender_states in by_sender.items():
        counts.setdefault(sender, {}).update(sender_states)
    return [
        SenderProgress(sender, sender_states, live.sender(campaign.provider, sender))
        for sender, sender_states in counts.items()
    ]


def pool_limit(senders: list[SenderProgress]) -> PoolLimit:
    """The senders' limits added up (each sender has its own limit)."""
    effective = [item.limit.effective for item in senders]
    cooldowns = [item.limit.cooldown_seconds for item in senders]
    return PoolLimit(
        declared=sum(item.limit.declared for item in senders),
        effective=None if None in effective else sum(e for e in effective if e is not None),
        cooldown_seconds=None
        if None in cooldowns
        else max((c for c in cooldowns if c is not None), default=0.0),
    )
