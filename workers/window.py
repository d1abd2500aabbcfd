"""The 24-hour customer-service window per (provider, sender, recipient), kept in Redis.

An interactive message is a session message: it reaches only someone who wrote to that sender in
the last 24 hours. What wadispatch knows of a pair:

* ``open`` — an inbound message arrived (a webhook): the key expires after ``window_seconds``;
* ``closed`` — the provider refused a send with its window error: the key stays
  ``window_closed_ttl_seconds`` (30 days) unless an inbound message reopens the pair first;
* unknown (no key) — the send is tried, and the provider decides.

Before a batch is sent, :meth:`RedisWindows.closed_among` looks every pair up in ONE round trip
(``MGET``); the messages to pairs known closed fail fast as ``window_closed`` with no request.

Keys: ``<window_prefix>:<provider>:<sender or ->:<recipient>``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Protocol

import redis
from wadispatch.redisretry import retry_options
from wadispatch.settings import Settings

OPEN = b"open"
CLOSED = b"closed"
Pair = tuple[str, str | None, str | None]
"""(provider, sender, recipient ``+<digits>``)"""


class Windows(Protocol):
    """Where window state lives (Redis, or nowhere)."""

    def closed_among(self, pairs: list[Pair]) -> list[bool]: ...

    def open(self, pairs: Iterable[Pair]) -> None: ...

    def close(self, pairs: Iterable[Pair]) -> None: ...


class NoWindows:
    """No window tracking (turned off, or eager mode without Redis): every pair is unknown."""

    def closed_among(self, pairs: list[Pair]) -> list[bool]:
        return [False] * len(pairs)

    def open(self, pairs: Iterable[Pair]) -> None:
        return None

    def close(self, pairs: Iterable[Pair]) -> None:
        return None


class RedisWindows:
    """Window state in Redis; each method is one round trip however many pairs it gets."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.prefix = settings.window_prefix
        self.open_ms = int(settings.window_seconds * 1000)
        self.closed_ms = int(settings.window_closed_ttl_seconds * 1000)

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> RedisWindows:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, **retry_options())
        return cls(client, settings)

    def key(self, pair: Pair) -> str:
        provider, sender, recipient = pair
        return f"{self.prefix}:{provider}:{sender or '-'}:{recipient}"

    def closed_among(self, pairs: list[Pair]) -> list[bool]:
        """For each pair, whether its window is known closed (pairs without a recipient: no)."""
        known = [index for index, pair in enumerate(pairs) if pair[2]]
        closed = [False] * len(pairs)
        if not known:
            return closed
        values = self.redis.mget([self.key(pairs[index]) for index in known])
        for index, value in zip(known, values, strict=True):
            closed[index] = value == CLOSED
        return closed

    def open(self, pairs: Iterable[Pair]) -> None:
        """Inbound messages from these recipients: their windows are open for ``window_seconds``."""
        self._set(pairs, OPEN, self.open_ms)

    def close(self, pairs: Iterable[Pair]) -> None:
        """The provider said these windows are closed."""
        self._set(pairs, CLOSED, self.closed_ms)

    def state(self, pair: Pair) -> str | None:
        """``"open"``, ``"closed"`` or ``None`` (unknown), for reports and tests."""
        value = self.redis.get(self.key(pair))
        return value.decode() if value else None

    def _set(self, pairs: Iterable[Pair], value: bytes, ttl_ms: int) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for pair in pairs:
            if pair[2]:
                pipe.set(self.key(pair), value, px=ttl_ms)
        if len(pipe):
            pipe.execute()


_windows: dict[int, Windows] = {}
_windows_lock = threading.Lock()


def get_windows(settings: Settings) -> Windows:
    """The window store of this process: Redis, or none when ``window_tracking`` is off."""
    pid = os.getpid()
    with _windows_lock:
        windows = _windows.get(pid)
        if windows is None:
            windows = _windows[pid] = (
                RedisWindows.from_url(settings.redis_url, settings)
                if settings.window_tracking
                else NoWindows()
            )
        return windows
