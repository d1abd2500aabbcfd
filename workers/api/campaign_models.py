"""The campaign routes' bodies (pydantic): the upload's fields, and what the routes answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from wadispatch.campaigns.api import CampaignProgress, CampaignRecord


class CampaignFields(BaseModel):
    """The text fields of ``POST /v1/campaigns`` (the file and the template are parts of their own)."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, description="Checked with the template (same code as a message).")
    sender: str | None = Field(default=None, min_length=1, max_length=256)
    senders: list[str] | None = Field(
        default=None,
        description="A pool of the provider's senders instead of `sender` (one part each, "
        "`-F senders=A -F senders=B`, or comma-separated): each recipient gets one of them, the one "
        "it had in an earlier pool campaign when that one is in the pool, else the least loaded. "
        "At most 50, no repeats.",
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone_column: str = Field(default="phone", min_length=1, max_length=200)
    region: str | None = Field(default=None, min_length=2, max_length=2)
    format: Literal["csv", "jsonl"] | None = None
    start_at: str | None = Field(
        default=None, description="Send nothing before this ISO 8601 time (with its offset)."
    )
    send_window: str | None = Field(
        default=None,
        description="`HH:MM-HH:MM`: send only between these local times of each recipient (the zone "
        "from the phone number, or `timezone`); `22:00-06:00` crosses midnight.",
    )
    timezone: str | None = Field(default=None, description="An IANA zone for every recipient's window.")
    valid_for_seconds: int | None = Field(
        default=None, description="A message not sent within this many seconds of the start fails `expired`."
    )
    expires_at: str | None = Field(
        default=None, description="A message not sent by this ISO 8601 time (with offset) fails `expired`."
    )


class Rows(BaseModel):
    """What became of the file's rows."""

    read: int
    accepted: int = Field(description="Recorded as messages (`pending` when accepted).")
    invalid: int = Field(description="Bad number, missing column, filled text over its limit...")
    duplicate: int = Field(description="The number of an earlier row.")
    suppressed: int = Field(description="On the suppression list.")

    @classmethod
    def of(cls, campaign: CampaignRecord) -> Rows:
        return cls(
            read=campaign.rows_read,
            accepted=campaign.accepted,
            invalid=campaign.invalid,
            duplicate=campaign.duplicate,
            suppressed=campaign.suppressed,
        )


class CampaignOut(BaseModel):
    """A campaign as the ledger holds it."""

    campaign_id: str
    name: str
    provider: str
    sender: str | None = Field(description="The sender (a pool's first).")
    senders: list[str] = Field(description="The campaign's senders: its pool, or its one sender.")
    status: str = Field(description="running, paused, cancelled or done")
    rows: Rows
    created_at: datetime

    @classmethod
    def of(cls, campaign: CampaignRecord) -> CampaignOut:
        return cls(
            campaign_id=campaign.id,
            name=campaign.name,
            provider=campaign.provider,
            sender=campaign.sender,
            senders=list(campaign.senders or ([campaign.sender] if campaign.sender else [])),
            status=campaign.status,
            rows=Rows.of(campaign),
            created_at=campaign.created_at,
        )


class CampaignAccepted(CampaignOut):
    """A campaign whose rows are all in the ledger, and whose sends are queued."""

    queued: bool = Field(
        description="False when the broker was unreachable: the messages stay `pending` until "
        "`POST /v1/campaigns/{id}/resume`."
    )


class CampaignList(BaseModel):
    campaigns: list[CampaignOut] = Field(description="Newest first.")


class SenderProgressOut(BaseModel):
    """One sender of a campaign: its messages and its limit."""

    sender: str | None
    states: dict[str, int] = Field(description="Its messages per state.")
    remaining: int = Field(description="Its messages still `pending` or `sending`.")
    limit_per_s: float = Field(description="Its configured limit as applied (rate x headroom).")
    effective_limit_per_s: float | None = Field(
        description="What the shared limiter lets it send now; null when the limiter cannot be read."
    )
    cooldown_seconds: float | None = Field(description="Its cooldown left after a 429 (null when unknown).")


class CampaignProgressOut(CampaignOut):
    """Where a campaign stands (what ``wadispatch campaign status --json`` prints)."""

    reading: bool = Field(description="True while its file is still being read.")
    states: dict[str, int] = Field(description="Messages per state.")
    failed_reasons: dict[str, int] = Field(description="Failed messages per reason.")
    remaining: int = Field(description="Messages still `pending` or `sending`.")
    done: bool = Field(description="Every row read and every message in a final state.")
    started_at: datetime | None = Field(
        description="The first claim of one of its messages (null until then)."
    )
    finished_at: datetime | None = Field(
        description="When its last message settled (null until every row is read and every message settled)."
    )
    duration_seconds: float | None = Field(
        description="From `started_at` to `finished_at` (to now while it runs); null before the start."
    )
    average_rate_per_s: float | None = Field(description="Messages settled / duration.")
    throughput_per_s: float | None = Field(
        description="The current rate: messages settled per second over the last 30 s; null before "
        "the start and after the end."
    )
    limit_per_s: float = Field(
        description="The sender's configured limit as applied (rate x headroom); a pool's: the sum "
        "of its senders'."
    )
    effective_limit_per_s: float | None = Field(
        description="What the shared limiter lets the sender send now: the limit x its factor (halved "
        "on repeated 429s, recovering over time); null when the limiter cannot be read."
    )
    cooldown_seconds: float | None = Field(
        description="The sender's cooldown left after a 429 (null when unknown)."
    )
    rate_limited: int = Field(description="The provider's rate refusals (429s) met by its messages.")
    retries: int = Field(description="Times one of its messages went back to the queue to be tried again.")
    held_back: int = Field(
        description="Of the retries, those the limiter held back without a request (cooldown, late slot)."
    )
    workers_alive: int | None = Field(
        description="Workers with a fresh heartbeat on the queue (asked while messages remain; null "
        "otherwise or when the broker cannot be asked)."
    )
    eta_seconds: float | None = Field(description="Null with `eta_note` saying why.")
    per_sender: list[SenderProgressOut] = Field(
        description="Per sender, in pool order (one entry for a single-sender campaign)."
    )
    eta_note: str | None = Field(
        description="Why there is no ETA: `unknown: no worker running`, `unknown: cannot reach the "
        "broker`, `paused`, `cancelled`, `done`..."
    )
    sent_as_template: int = Field(
        default=0,
        description="Messages sent as the campaign's fallback template because the recipient's "
        "24-hour window was closed (counted once accepted; also in `states`).",
    )
    suppressed_by_keyword: int = Field(
        description="Messages stopped (`failed`, reason `suppressed`) because their recipient wrote "
        'an opt-out keyword after they were queued (README "Opt-out keywords").'
    )
    waiting_for_window: int = Field(
        default=0,
        description="Pending messages held for the campaign's start or their send window (no job yet).",
    )
    next_release_at: datetime | None = Field(default=None, description="When the first of those goes.")
    expired: int = Field(default=0, description="Messages failed `expired` (validity ended unsent).")
    schedule: dict[str, str | int | None] = Field(
        default_factory=dict,
        description="The campaign's `start_at`, `send_window`, `timezone`, `valid_for_seconds` and "
        "`expires_at`.",
    )

    @classmethod
    def of_progress(cls, progress: CampaignProgress) -> CampaignProgressOut:
        figures = progress.as_json()
        return cls(
            **CampaignOut.of(progress.campaign).model_dump(),
            reading=figures["reading"],
            states=progress.states,
            failed_reasons=progress.failed_reasons,
            remaining=progress.remaining,
            done=progress.done,
            started_at=progress.started_at,
            finished_at=progress.finished_at,
            per_sender=figures["per_sender"],
            **{
                key: figures[key]
                for key in (
                    "duration_seconds",
                    "average_rate_per_s",
                    "throughput_per_s",
                    "limit_per_s",
                    "effective_limit_per_s",
                    "cooldown_seconds",
                    "rate_limited",
                    "retries",
                    "held_back",
                    "workers_alive",
                    "eta_seconds",
                    "eta_note",
                    "sent_as_template",
                    "suppressed_by_keyword",
                    "waiting_for_window",
                    "next_release_at",
                    "expired",
                    "schedule",
                )
            },
        )


class CampaignCancelled(CampaignOut):
    cancelled: int = Field(description="Messages this call moved to `failed` (reason `cancelled`).")
