"""The simulator's knobs, as one pydantic model, and loading them from a JSON or TOML file.

Every field has a default that makes the simulator behave like a healthy provider: realistic
latency (lognormal, median 150 ms, p99 600 ms), WhatsApp's default throughput of 80 messages/s per
sender, and no failures. Shares and rates are fractions in ``[0, 1]``; a limit of ``0`` or ``None``
means unlimited.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from wadispatch.settings import ProviderName

LatencyDistribution = Literal["lognormal", "fixed", "uniform"]


def _share(default: float = 0.0) -> Any:
    return Field(default=default, ge=0.0, le=1.0)


class SimulatorConfig(BaseModel):
    """Everything that shapes how the simulated providers answer.

    Replace it at run time with ``PUT /_sim/config`` (partial JSON allowed) or
    :meth:`SimulatorServer.configure`.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    # Latency of every answer.
    latency: LatencyDistribution = "lognormal"
    latency_ms: float = Field(default=150.0, ge=0.0)
    """The median of the lognormal distribution, or the value of ``fixed``; 0 answers at once."""
    latency_p99_ms: float = Field(default=600.0, ge=0.0)
    """The lognormal's 99th percentile (its tail); at or below the median means no spread."""
    latency_min_ms: float = Field(default=50.0, ge=0.0)
    """The lower bound of ``uniform``."""
    latency_max_ms: float = Field(default=400.0, ge=0.0)
    """The upper bound of ``uniform``."""

    # Throughput limits over a sliding window; 0 or None means unlimited.
    sender_limit: int | None = Field(default=80, ge=0)
    """Accepted messages per sender per second (WhatsApp's default tier is 80/s)."""
    pair_limit: int | None = Field(default=None, ge=0)
    """Accepted messages per (sender, recipient) per ``pair_window_seconds``; off by default."""
    pair_window_seconds: float = Field(default=1.0, gt=0.0)

    # Recipients' fates: a stable share by hash of (seed, digits), plus explicit lists.
    window_closed_share: float = _share()
    opted_out_share: float = _share()
    window_closed_recipients: list[str] = Field(default_factory=list)
    window_closed_by_webhook: bool = False
    """Meta only: accept an interactive message to a closed window (200 and a wamid) and report
    it ``failed`` with 131047 in a status webhook after ``sent``, as the Cloud API does, instead
    of refusing the request; other providers refuse it either way."""
    opted_out_recipients: list[str] = Field(default_factory=list)
    seed: int = 0
    """Seeds the recipients' fates and the random draws (faults, latency, replies)."""

    # Faults, drawn per request (the rates together at most 1).
    error_rate: float = _share()
    """Share of requests answered with the provider's own 5xx."""
    hang_rate: float = _share()
    """Share of requests left without an answer for ``hang_seconds``, then closed."""
    drop_rate: float = _share()
    """Share of requests whose connection is closed without an answer."""
    hang_seconds: float = Field(default=60.0, ge=0.0)
    rate_limited_rate: float = _share()
    """Share of requests answered with the provider's rate-limit answer (its 429), whatever the
    limits: a storm of 429s. Drawn with the faults above (the four rates together at most 1)."""
    rate_limited_retry_after: float = Field(default=1.0, ge=0.0)
    """The ``Retry-After`` (seconds) of the answers drawn by ``rate_limited_rate``."""

    # Credentials: any non-empty value passes except these.
    rejected_credentials: list[str] = Field(default_factory=lambda: ["invalid"])

    # Webhooks: status callbacks and simulated user replies.
    callbacks: bool = True
    """Send callbacks at all (only where a URL is known)."""
    webhook_url: str | None = None
    """Where every provider's callbacks go, unless ``webhook_urls`` names one for it."""
    webhook_urls: dict[ProviderName, str] = Field(default_factory=dict)
    follow_post_back_url: bool = True
    """Zixflow: post to the request's ``post_back_url`` when it has one."""
    callback_delay_ms: float = Field(default=100.0, ge=0.0)
    """Delay before each callback of a message (sent, delivered, read, reply follow each other)."""
    read_share: float = _share(1.0)
    """Share of delivered messages that are then read."""
    failed_share: float = _share()
    """Share of accepted messages that later fail (status ``failed`` after ``sent``)."""
    reply_share: float = _share(0.5)
    """Share of read messages the user answers by choosing one of its buttons or rows."""
    webhook_timeout_seconds: float = Field(default=5.0, gt=0.0)
    webhook_concurrency: int = Field(default=16, ge=1)
    webhook_queue_size: int = Field(default=10_000, ge=1)
    """Callbacks waiting to be posted; more are dropped (and counted)."""
    meta_app_secret: str = "sim-meta-app-secret"
    briq_webhook_secret: str = "sim-briq-webhook-secret"
    bird_signing_key: str = "sim-bird-signing-key"

    # Stats.
    log_limit: int = Field(default=100_000, ge=0)
    """Entries kept in the accepted-message log (the oldest go first)."""

    @field_validator("window_closed_recipients", "opted_out_recipients")
    @classmethod
    def _digits_only(cls, values: list[str]) -> list[str]:
        return ["".join(ch for ch in value if ch.isdigit()) for value in values]

    @model_validator(mode="after")
    def _check_sums(self) -> SimulatorConfig:
        if self.error_rate + self.hang_rate + self.drop_rate + self.rate_limited_rate > 1.0 + 1e-9:
            raise ValueError("error_rate + hang_rate + drop_rate + rate_limited_rate must be at most 1")
        if self.window_closed_share + self.opted_out_share > 1.0 + 1e-9:
            raise ValueError("window_closed_share + opted_out_share must be at most 1")
        if self.latency_max_ms < self.latency_min_ms:
            raise ValueError("latency_max_ms must be at least latency_min_ms")
        return self

    def updated(self, changes: dict[str, Any]) -> SimulatorConfig:
        """A validated copy with ``changes`` applied (the other fields kept)."""
        return SimulatorConfig.model_validate({**self.model_dump(), **changes})

    def webhook_url_for(self, provider: ProviderName) -> str | None:
        """The URL this provider's callbacks go to, or None."""
        if not self.callbacks:
            return None
        return self.webhook_urls.get(provider) or self.webhook_url


def load_config(path: str | Path) -> SimulatorConfig:
    """Read a config file: ``.toml`` (tomllib) or ``.json``.

    The fields may sit at the top level or under a ``simulator`` table/object.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table/object of simulator settings")
    if isinstance(data.get("simulator"), dict):
        data = data["simulator"]
    return SimulatorConfig.model_validate(data)
