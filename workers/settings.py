"""Configuration from the environment, as one typed object.

Every name is ``WADISPATCH_<FIELD>`` (``WADISPATCH_BRIQ_API_KEY``, ``WADISPATCH_DATABASE_URL``, ...).
The Redis URL also falls back to the conventional ``REDIS_URL``. Secrets are ``SecretStr`` so they
never show in a ``repr``, a log line or a traceback.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from wadispatch.optout import DEFAULT_KEYWORDS as DEFAULT_OPT_OUT_KEYWORDS
from wadispatch.optout import Keywords, parse_keywords

ProviderName = Literal["briq", "bird", "zixflow", "wacr", "meta"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("briq", "bird", "zixflow", "wacr", "meta")

DEFAULT_DATABASE_URL = "sqlite:///wadispatch.sqlite3"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


DEFAULT_CONFIG_FILE = "wadispatch.toml"

#: Meta redelivers a webhook for up to 7 days: its dedupe key must be kept at least that long.
WEBHOOK_REDELIVERY_DAYS = 7


class SenderLimit(BaseModel):
    """The throughput one sender (a WhatsApp business number) is allowed."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(gt=0, description="messages per second")
    burst: int = Field(default=1, ge=1, description="messages that may go at the same instant")
    pair_interval_seconds: float | None = Field(
        default=None, gt=0, description="at most one message to the same recipient per this many seconds"
    )


class Settings(BaseSettings):
    """Everything wadispatch reads from the environment (or a ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_prefix="WADISPATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        # `WADISPATCH_BRIQ_API_KEY=` means "not set", not an empty credential.
        env_ignore_empty=True,
    )

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = Field(
        default=DEFAULT_REDIS_URL,
        validation_alias=AliasChoices("WADISPATCH_REDIS_URL", "REDIS_URL", "redis_url"),
    )

    # Briq "Karibu"
    briq_base_url: str = "https://karibu.briq.tz"
    briq_api_key: SecretStr | None = None
    # Bird (MessageBird) Conversations API
    bird_base_url: str = "https://conversations.messagebird.com"
    bird_access_key: SecretStr | None = None
    # Zixflow
    zixflow_base_url: str = "https://api-ai.zixflow.com"
    zixflow_api_key: SecretStr | None = None
    zixflow_workspace_id: str | None = None
    zixflow_buttons_path: str = "/api/ingest/whatsapp/v1/message/interactive/reply-buttons/send"
    # Not in Zixflow's stored docs: assumed to be the reply-buttons path's sibling.
    zixflow_list_path: str = "/api/ingest/whatsapp/v1/message/interactive/list/send"
    zixflow_post_back_url: str | None = None
    # WA.cr documents no host: its base URL must be configured.
    wacr_base_url: str | None = None
    wacr_token: SecretStr | None = None
    # Meta WhatsApp Cloud API (the sender is the phone-number id)
    meta_base_url: str = "https://graph.facebook.com/v23.0"
    meta_access_token: SecretStr | None = None

    # HTTP client (one pooled client per worker process)
    http_connect_timeout: float = Field(default=5.0, gt=0)
    http_read_timeout: float = Field(default=15.0, gt=0)
    http_write_timeout: float = Field(default=10.0, gt=0)
    http_pool_timeout: float = Field(default=5.0, gt=0)
    http_max_connections: int = Field(default=200, ge=1)

    # Retries of rate-limited and transient outcomes
    max_attempts: int = Field(default=10, ge=1)
    max_age_seconds: float = Field(default=3600.0, gt=0)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_cap_seconds: float = Field(default=300.0, gt=0)

    # Shared rate limits per (provider, sender), kept in Redis
    rate_limiting: bool = True
    limiter_prefix: str = "wadispatch:rl"
    """Prefix of the limiter's Redis keys (separate deployments sharing a Redis use their own)."""
    default_rate: float = Field(default=80.0, gt=0)
    default_burst: int = Field(default=1, ge=1)
    default_pair_interval_seconds: float | None = Field(default=None, gt=0)
    senders: dict[str, SenderLimit] = Field(default_factory=dict)
    """Per-sender limits keyed ``"<provider>:<sender>"``, e.g. ``"meta:1107264639145282"``."""
    rate_headroom: float = Field(default=0.96, gt=0, le=1)
    """Share of a declared rate actually used, so that timing jitter never crosses the limit."""
    limiter_max_wait_seconds: float = Field(default=1.0, ge=0)
    """A message whose slot is further away than this is rescheduled instead of waited for."""
    limiter_lateness_seconds: float = Field(default=0.015, ge=0)
    """A message that wakes up later than this after its slot takes a fresh one (keep it within
    the headroom's slack: at 0.96 of the rate, 40 ms late in a second still keeps to the limit)."""
    mark_lead_seconds: float = Field(default=0.05, ge=0, le=1)
    """How long before its slot a paced message is marked requested in the ledger, so that the
    write's time does not make the request late (and bunched with the next)."""
    rate_recovery_per_second: float = Field(default=0.05, gt=0, le=1)
    """Share of the declared rate a sender's cut rate climbs back by, per second without a 429."""
    rate_min_factor: float = Field(default=0.05, gt=0, le=1)
    """The lowest share of its declared rate a sender is cut to."""
    rate_learning_window_seconds: float = Field(default=1.0, gt=0, le=60)
    """The provider's rate window: at a burst of 429s, the rate becomes what it accepted over it."""
    rate_recovery_delay_seconds: float = Field(default=60.0, ge=0)
    """How long a rate learned from 429s is kept, without recovering, before it is probed upwards."""

    # Sending
    max_in_flight: int = Field(default=256, ge=1)
    """Provider requests in flight per worker process."""
    send_loop: Literal["asyncio", "uvloop", "auto"] = "asyncio"
    """The event loop of a worker's sends: ``asyncio``'s own, ``uvloop`` (a fifth to a quarter less
    CPU per request, but its millisecond timers pace a sender less precisely: more 429s at a
    provider's limit), or ``auto``: uvloop where it is installed (not on Windows)."""
    send_batch_size: int = Field(default=100, ge=1, le=1000)
    """Message ids per job published by ``enqueue_many``."""
    record_flush_seconds: float = Field(default=0.005, gt=0, le=1)
    """How long a worker gathers request marks and answers before writing them to the ledger
    together: the most the ledger lags the provider."""
    record_retry_seconds: float = Field(default=60.0, ge=0)
    """How long a worker keeps trying to write marks and answers while the ledger's database is
    unreachable (a restart) before it leaves them to the reconciler."""
    early_events_keep_seconds: float = Field(default=3600.0, gt=0)
    """How long a webhook status or reply naming a message not recorded yet is kept for its send
    to be recorded; older ones are dropped (logged) by the reconciler."""

    # Campaigns
    campaign_batch_size: int = Field(default=2000, ge=1, le=50_000)
    """Rows of a campaign's file recorded per ledger transaction."""
    campaign_fanout_rows: int = Field(default=20_000, ge=1)
    """A fan-out task is published after every this many rows read, so sends start while reading."""
    campaign_fanout_page_size: int = Field(default=5000, ge=1)
    """Pending ids the fan-out task reads from the ledger per query."""
    campaign_default_region: str | None = None
    """ISO 3166 region for phone numbers written without a country code (e.g. TZ); None: refuse them."""
    default_timezone: str = "UTC"
    """The time zone of a recipient whose number libphonenumber cannot place, for send windows."""
    release_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    """How often Celery beat releases the campaign messages whose start or send window has come."""

    # Worker defaults for `wadispatch worker`
    worker_pool: Literal["threads", "prefork", "gevent", "solo"] = "threads"
    worker_concurrency: int = Field(default=8, ge=1)
    queue: str = "wadispatch"

    # --- The HTTP API, webhooks, the 24-hour window and events to user code ---
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body the API reads (messages and webhooks); larger ones get 413."""
    api_max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    """Largest campaign upload (``POST /v1/campaigns``, the whole multipart body); larger ones get 413."""
    public_base_url: str | None = None
    """The API's URL as providers see it (``https://wadispatch.example.com``), for Bird's signed
    URL hash behind a proxy; unset: the URL of the request as it arrived."""
    meta_app_secret: SecretStr | None = None
    """Meta's app secret: verifies ``X-Hub-Signature-256``."""
    meta_verify_token: SecretStr | None = None
    """Answers Meta's webhook verification (``GET /webhooks/meta?hub.verify_token=...``)."""
    briq_webhook_secret: SecretStr | None = None
    """Verifies ``X-Briq-Signature`` (hex HMAC-SHA256 of the body)."""
    bird_signing_key: SecretStr | None = None
    """Verifies ``MessageBird-Signature-JWT``."""
    bird_jwt_max_lifetime_seconds: int = Field(default=300, ge=1)
    """Longest lifetime (``exp`` - ``nbf``, or ``exp`` - ``iat``) of a ``MessageBird-Signature-JWT``
    accepted: Bird signs each webhook with a short-lived token, so a long-lived one is refused
    (a stolen one could be replayed for its whole life)."""
    zixflow_webhook_secret: SecretStr | None = None
    """The secret last part of the post-back URL: ``/webhooks/zixflow/<secret>``."""
    wacr_webhook_secret: SecretStr | None = None
    """The secret last part of WA.cr's webhook URL: ``/webhooks/wacr/<secret>``."""
    window_tracking: bool = True
    """Track the 24-hour window per (provider, sender, recipient) in Redis; a pair known closed
    fails fast as ``window_closed`` without a provider request."""
    window_seconds: float = Field(default=86_400.0, gt=0)
    window_closed_ttl_seconds: float = Field(default=30 * 86_400.0, gt=0)
    """How long a pair stays known closed without news (an inbound message reopens it at once)."""
    window_prefix: str = "wadispatch:win"
    event_tasks: dict[Literal["reply", "status", "window_closed", "opted_out", "expired"], str] = Field(
        default_factory=dict
    )
    """Celery task names called on events, e.g. ``{"reply": "myapp.tasks.on_reply"}``."""
    event_queue: str = "celery"
    """The queue event tasks are published to (Celery's default queue unless told otherwise)."""
    opt_out_keywords: str = DEFAULT_OPT_OUT_KEYWORDS
    """Comma-separated words that, as the whole text of an inbound message or a reply, put its
    writer on the suppression list (matched regardless of case, accents, spaces and punctuation
    at the ends; see :mod:`wadispatch.optout`). ``none`` (or empty, where that can be given):
    off."""
    opt_out_scope: Literal["sender", "all"] = "sender"
    """Whom an opt-out keyword stops: ``sender``, the business number it was written to;
    ``all``, every sender."""
    # --- end of the HTTP API settings ---

    # Recovery: the reconciler and dead letters (README "Recovery", "Dead letters")
    reconcile_interval_seconds: float = Field(default=60.0, gt=0)
    """How often Celery beat runs the reconciler."""
    reconcile_pending_after_seconds: float = Field(default=600.0, gt=0)
    """A due ``pending`` message untouched this long has its job published again."""
    reconcile_sending_after_seconds: float = Field(default=600.0, gt=0)
    """A message ``sending`` this long is settled by ``stuck_sending_policy`` (keep it well above
    the HTTP timeouts and the Celery task time limit: a live attempt must never look stuck)."""
    stuck_sending_policy: Literal["fail", "resend"] = "fail"
    """``fail``: ``failed`` with reason ``unknown_outcome`` (never sent twice); ``resend``: back to
    ``pending`` and sent again (never lost, but the provider may get it twice)."""
    reconcile_page_size: int = Field(default=5000, ge=1, le=10000)
    """Messages the reconciler reads and updates per query, each page of updates one short
    transaction (larger pages write each ledger page fewer times; on SQLite a page of 5,000 holds
    the write lock for about a tenth of a second)."""
    reconcile_lock_seconds: float = Field(default=60.0, gt=0)
    """The reconciler's lock in Redis (one run at a time per queue) lasts this long unless its run
    renews it, which it does after every page: a run that died frees it within this time."""
    reconcile_max_queued_jobs: int = Field(default=1000, ge=0)
    """Jobs waiting in the queue above which the reconciler holds back republishing (nobody takes
    them fast enough: more would only pile up); a run also stops republishing once its own jobs
    bring the queue to this bound. 0: no bound."""
    reconcile_requires_workers: bool = True
    """Hold back republishing while no worker's heartbeat is fresh (nobody would take the jobs).
    Off for workers that run without wadispatch's Celery app (no heartbeat)."""
    heartbeat_interval_seconds: float = Field(default=10.0, gt=0)
    """How often each worker records in Redis that it is alive and consuming its queues."""
    heartbeat_timeout_seconds: float = Field(default=60.0, gt=0)
    """A worker not heard from this long counts as gone (keep it a few intervals long)."""
    dead_letter_max_body_bytes: int = Field(default=65536, ge=256)
    """Raw job bodies kept in the dead-letter store are cut to this size."""

    # Metrics (README "Monitoring")
    api_metrics: bool = True
    """Serve Prometheus metrics at the API's ``/metrics``, without an API key (Prometheus scrapes
    without credentials): keep the API's port internal, or turn this off where it is public."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """The port a worker serves its Prometheus metrics on (``/metrics``); unset: not served.
    One server per worker process: the threads pool (the default) runs all its jobs in it."""
    metrics_host: str = "0.0.0.0"
    """The address a worker's metrics server listens on (when ``metrics_port`` is set)."""
    metrics_max_senders: int = Field(default=200, ge=1)
    """Senders a process labels metrics with, beyond those declared in ``senders``; later ones
    are counted under ``sender="other"`` (a bound on the series a typo or a flood could add)."""

    # Pruning: how long the ledger keeps what would otherwise grow forever (README "Pruning").
    # For each kind, 0 means never prune it.
    prune_interval_seconds: float = Field(default=86_400.0, gt=0)
    """How often Celery beat runs the prune (daily)."""
    prune_batch_size: int = Field(default=2000, ge=1, le=10_000)
    """Rows deleted per statement, each batch in its own short transaction, so a prune never holds
    the ledger's write lock (SQLite) or many row locks (PostgreSQL) for long."""
    prune_webhook_events_after_days: int = Field(default=14, ge=0)
    """Days a webhook event's key (what makes a second delivery a no-op) is kept; 0: forever.
    At least 7: providers redeliver an event for up to 7 days (Meta), and a redelivery must still
    find its key, or a status or a reply would be applied twice."""
    prune_transitions_after_days: int = Field(default=30, ge=0)
    """Days the transitions of a settled message (``sent``, ``delivered``, ``read``, ``failed``)
    are kept after its last change; 0: forever. The message row itself is kept, with its outcome
    (state, reason, attempts, provider id and error, when it last changed), so ``status``, the
    campaign reports and idempotency keys keep working; only the step-by-step history goes. Not
    even the last transition is kept: one row per message would still grow with every message.
    Transitions of messages not settled are never pruned."""
    prune_dead_letters_after_days: int = Field(default=30, ge=0)
    """Days a replayed dead letter is kept after its replay; 0: forever. One not replayed is never
    pruned (``wadispatch dead-letters purge --all`` deletes those by hand)."""
    prune_campaign_errors_after_days: int = Field(default=90, ge=0)
    """Days the skipped rows (invalid, duplicate, suppressed) of an ended campaign are kept after
    its last change; 0: forever. Its counts stay; its report then lists only the accepted rows."""

    @field_validator("prune_webhook_events_after_days")
    @classmethod
    def _check_webhook_event_retention(cls, days: int) -> int:
        if 0 < days < WEBHOOK_REDELIVERY_DAYS:
            raise ValueError(
                f"{days} is too short: keep webhook event keys at least {WEBHOOK_REDELIVERY_DAYS} days "
                f"(providers redeliver events for up to {WEBHOOK_REDELIVERY_DAYS} days), or 0 never to "
                "prune them"
            )
        return days

    @field_validator("opt_out_keywords")
    @classmethod
    def _check_opt_out_keywords(cls, value: str) -> str:
        parse_keywords(value)  # raises ValueError naming the word at fault
        return value

    @property
    def opt_out_words(self) -> Keywords:
        """The parsed :attr:`opt_out_keywords`."""
        return parse_keywords(self.opt_out_keywords)

    @field_validator("default_timezone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from wadispatch.validity import ScheduleError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                f"unknown time zone {value!r}: give an IANA name such as Europe/Paris"
            ) from None
        return value

    @field_validator("senders")
    @classmethod
    def _check_sender_keys(cls, senders: dict[str, SenderLimit]) -> dict[str, SenderLimit]:
        for key in senders:
            provider, _, sender = key.partition(":")
            if provider not in PROVIDER_NAMES or not sender:
                raise ValueError(
                    f"{key!r}: keys are '<provider>:<sender>' with a provider of {PROVIDER_NAMES}"
                )
        return senders

    def secret_values(self) -> list[str]:
        """The configured credentials in clear, to scrub them from text a provider sends back."""
        secrets = (
            self.briq_api_key,
            self.bird_access_key,
            self.zixflow_api_key,
            self.wacr_token,
            self.meta_access_token,
        )
        return [secret.get_secret_value() for secret in secrets if secret and secret.get_secret_value()]

    def sender_limit(self, provider: str, sender: str | None) -> SenderLimit:
        """The declared limit of a sender, or the defaults."""
        declared = self.senders.get(f"{provider}:{sender or ''}")
        if declared is not None:
            return declared
        return SenderLimit(
            rate=self.default_rate,
            burst=self.default_burst,
            pair_interval_seconds=self.default_pair_interval_seconds,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then ``.env``, then the TOML config file."""
        toml_file = os.environ.get("WADISPATCH_CONFIG_FILE", DEFAULT_CONFIG_FILE)
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
            file_secret_settings,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
