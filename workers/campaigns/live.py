"""What the broker's Redis says now: workers alive, the queue's depth, and each sender's limiter.

Read by campaign progress and the operations page. Every read is best effort: Redis down (or
not configured) gives ``None`` (logged at debug), never an error, so progress still shows what the
ledger knows. One Redis client and one limiter per URL and process, made on first use.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wadispatch import liveness
from wadispatch.settings import Settings

if TYPE_CHECKING:
    from wadispatch.ratelimit import SenderState

log = logging.getLogger("wadispatch.campaigns")

_clients: dict[str, Any] = {}
_limiters: dict[tuple[str, str, float], Any] = {}
_lock = threading.RLock()


@dataclass(frozen=True)
class SenderLimit:
    """A sender's configured limit next to what the shared limiter lets it send now."""

    provider: str
    sender: str | None
    declared: float
    """The declared rate x ``WADISPATCH_RATE_HEADROOM``: what the limiter starts from."""
    factor: float | None
    """The limiter's factor now (1: full rate; lower after 429s, or the rate learned from them);
    None when unknown."""
    cooldown_seconds: float | None
    strikes: int | None

    @property
    def effective(self) -> float | None:
        return None if self.factor is None else self.declared * self.factor


class Live:
    """Reads of the broker's Redis for one settings object (see the module's docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.down = False
        """Set by a failed read: this object's later reads answer None at once."""

    def queue(self) -> liveness.QueueState | None:
        """The queue's consumers and depth, or None when Redis cannot be asked."""
        if self.down:
            return None
        try:
            client = _client(self.settings.redis_url)
            return liveness.look(client, self.settings.queue, self.settings.heartbeat_timeout_seconds)
        except Exception as exc:  # redis raises many kinds
            log.debug("could not read the queue: %r", exc)
            self.down = True
            return None

    def workers_alive(self) -> int | None:
        state = self.queue()
        return None if state is None else state.workers_alive

    def sender(self, provider: str, sender: str | None) -> SenderLimit:
        """The sender's declared and effective rate (factor None when the limiter cannot be read)."""
        settings = self.settings
        declared = settings.sender_limit(provider, sender).rate * settings.rate_headroom
        state = self._state(provider, sender)
        if state is None:
            return SenderLimit(provider, sender, declared, None, None, None)
        return SenderLimit(provider, sender, declared, state.factor, state.cooldown, state.strikes)

    def _state(self, provider: str, sender: str | None) -> SenderState | None:
        from wadispatch.ratelimit import RedisLimiter, SenderState

        if not self.settings.rate_limiting:
            return SenderState(factor=1.0, cooldown=0.0, strikes=0)
        if self.down:
            return None
        try:
            settings = self.settings
            # What the limiter's state() reads: its Redis, its keys, and how fast a factor recovers.
            key = (settings.redis_url, settings.limiter_prefix, settings.rate_recovery_per_second)
            with _lock:
                limiter = _limiters.get(key)
                if limiter is None:
                    limiter = _limiters[key] = RedisLimiter(settings.redis_url, settings)
                    # The limiter's own client retries a lost connection for seconds (right for a
                    # send); a report asks once, with liveness' short timeouts.
                    limiter.redis = _client(settings.redis_url)
            return limiter.state(provider, sender)
        except Exception as exc:
            log.debug("could not read the limiter of %s: %r", provider, exc)
            self.down = True
            return None


def _client(url: str) -> Any:
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = liveness.redis_client(url)
        return client
