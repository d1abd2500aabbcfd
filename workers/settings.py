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

ProviderName = Literal["briq", "bird", "zixflow", "wacr", "meta"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("briq", "bird", "zixflow", "wacr", "meta")

DEFAULT_DATABASE_URL = "sqlite:///wadispatch.sqlite3"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


DEFAULT_CONFIG_FILE = "wadispatch.toml"


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
    rate_recovery_per_second: float = Field(default=0.05, gt=0, le=1)
    rate_min_factor: float = Field(default=0.05, gt=0, le=1)

    # Sending
    max_in_flight: int = Field(default=256, ge=1)
    """Provider requests in flight per worker process."""
    send_batch_size: int = Field(default=100, ge=1, le=1000)
    """Message ids per job published by ``enqueue_many``."""

    # Campaigns (issue 5)
    campaign_batch_size: int = Field(default=2000, ge=1, le=50_000)
    """Rows of a campaign's file recorded per ledger transaction."""
    campaign_fanout_rows: int = Field(default=20_000, ge=1)
    """A fan-out task is published after every this many rows read, so sends start while reading."""
    campaign_fanout_page_size: int = Field(default=5000, ge=1)
    """Pending ids the fan-out task reads from the ledger per query."""
    campaign_default_region: str | None = None
    """ISO 3166 region for phone numbers written without a country code (e.g. TZ); None: refuse them."""

    # Worker defaults for `wadispatch worker`
    worker_pool: Literal["threads", "prefork", "gevent", "solo"] = "threads"
    worker_concurrency: int = Field(default=8, ge=1)
    queue: str = "wadispatch"

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
