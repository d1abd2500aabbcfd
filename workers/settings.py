"""Configuration from the environment, as one typed object.

Every name is ``WADISPATCH_<FIELD>`` (``WADISPATCH_BRIQ_API_KEY``, ``WADISPATCH_DATABASE_URL``, ...).
The Redis URL also falls back to the conventional ``REDIS_URL``. Secrets are ``SecretStr`` so they
never show in a ``repr``, a log line or a traceback.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderName = Literal["briq", "bird", "zixflow", "wacr", "meta"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("briq", "bird", "zixflow", "wacr", "meta")

DEFAULT_DATABASE_URL = "sqlite:///wadispatch.sqlite3"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    """Everything wadispatch reads from the environment (or a ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_prefix="WADISPATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
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

    # Worker defaults for `wadispatch worker`
    worker_pool: Literal["threads", "prefork", "gevent", "solo"] = "threads"
    worker_concurrency: int = Field(default=64, ge=1)
    queue: str = "wadispatch"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
