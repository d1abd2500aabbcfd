"""The 24-hour customer-service window per (provider, sender, recipient), kept in Redis.

An interactive message is a session message: it reaches only someone who wrote to that sender in
the last 24 hours. What wadispatch knows of a pair:

* ``open`` — the recipient wrote: the key expires ``window_seconds`` after the time they wrote
  (the message's own time, not the webhook's arrival: a late redelivery of an old message opens
  nothing once its 24 hours are over, and never extends a window a newer message opened);
* ``closed`` — the provider refused a send with its window error: the key stays
  ``window_closed_ttl_seconds`` (30 days) unless an inbound message reopens the pair first;
* unknown (no key) — the send is tried, and the provider decides;
* lapsed — a campaign message held for its send window found the window open but closing before
  that opening (:meth:`RedisWindows.closes_at`): the pair's closing time is kept
  (:meth:`RedisWindows.watch_lapse`, key ``<window_prefix>:lapse:...``), so once it has passed
  with no newer message reopening the pair, the window is known closed.

The recipient of a pair is a phone number (``+<digits>``) or a WhatsApp business-scoped user id
(``US.13491208655302741918``): a message naming both opens the window under each, so a send by
either finds it. When a user changes number (or user id), an open window moves to the new one.

Before a batch is sent, :meth:`RedisWindows.closed_among` looks every pair up in ONE round trip
(``MGET``); the messages to pairs known closed fail fast as ``window_closed`` with no request.

Keys: ``<window_prefix>:<provider>:<sender or ->:<recipient>``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

import redis
from wadispatch.redisretry import retry_options
from wadispatch.settings import Settings

OPEN = b"open"
CLOSED = b"closed"
Pair = tuple[str, str | None, str | None]
"""(provider, sender, recipient: ``+<digits>`` or a business-scoped user id)"""
Opening = tuple[Pair, datetime | None]
"""A pair and when its recipient wrote (``None``: now)."""
Lapse = tuple[Pair, float, float]
"""A pair, when its open window closes, and until when to remember that (Unix seconds)."""

# KEYS: the windows to open; ARGV: now (ms), the window's length (ms), then for each key when
# its recipient wrote (ms). A window is set to expire at written + length, unless that is past
# or the key already holds a later expiry (an open window is never shortened). Expiries within a
# second count as the same: message times are whole seconds, and a redelivery must not re-set one.
_OPEN = """
local now = tonumber(ARGV[1])
local length = tonumber(ARGV[2])
local opened = 0
for i, key in ipairs(KEYS) do
  local remaining = math.min(tonumber(ARGV[2 + i]), now) + length - now
  if remaining > 0 then
    local later = false
    if redis.call('GET', key) == 'open' then
      local ttl = redis.call('PTTL', key)
      later = ttl == -1 or ttl >= remaining - 1000
    end
    if not later then
      redis.call('SET', key, 'open', 'PX', remaining)
      opened = opened + 1
    end
  end
end
return opened
"""

# KEYS: old1, new1, old2, new2, ...: an open old window becomes the new one's (same expiry,
# unless the new one is already open for longer) and the old key goes.
_MOVE = """
local moved = 0
for i = 1, #KEYS, 2 do
  local old, new = KEYS[i], KEYS[i + 1]
  local ttl = redis.call('PTTL', old)
  if redis.call('GET', old) == 'open' and ttl > 0 then
    local current = redis.call('PTTL', new)
    if not (redis.call('GET', new) == 'open' and (current == -1 or current >= ttl)) then
      redis.call('SET', new, 'open', 'PX', ttl)
    end
    redis.call('DEL', old)
    moved = moved + 1
  end
end
return moved
"""


class Windows(Protocol):
    """Where window state lives (Redis, or nowhere)."""

    def closed_among(self, pairs: list[Pair]) -> list[bool]: ...

    def open(self, pairs: Iterable[Pair], at: datetime | None = None) -> None: ...

    def open_at(self, openings: Iterable[Opening], *, now: float | None = None) -> None: ...

    def move(self, moves: Iterable[tuple[Pair, Pair]]) -> None: ...

    def close(self, pairs: Iterable[Pair]) -> None: ...

    def closes_at(self, pairs: list[Pair]) -> list[float | None]: ...

    def watch_lapse(self, lapses: Iterable[Lapse]) -> None: ...


class NoWindows:
    """No window tracking (turned off, or eager mode without Redis): every pair is unknown."""

    def closed_among(self, pairs: list[Pair]) -> list[bool]:
        return [False] * len(pairs)

    def open(self, pairs: Iterable[Pair], at: datetime | None = None) -> None:
        return None

    def open_at(self, openings: Iterable[Opening], *, now: float | None = None) -> None:
        return None

    def move(self, moves: Iterable[tuple[Pair, Pair]]) -> None:
        return None

    def close(self, pairs: Iterable[Pair]) -> None:
        return None

    def closes_at(self, pairs: list[Pair]) -> list[float | None]:
        return [None] * len(pairs)

    def watch_lapse(self, lapses: Iterable[Lapse]) -> None:
        return None


class RedisWindows:
    """Window state in Redis; each method is one round trip however many pairs it gets."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.prefix = settings.window_prefix
        self.open_ms = int(settings.window_seconds * 1000)
        self.closed_ms = int(settings.window_closed_ttl_seconds * 1000)
        self._open_script = client.register_script(_OPEN)
        self._move_script = client.register_script(_MOVE)

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
        keys = [self.key(pairs[index]) for index in known]
        values = self.redis.mget(keys + [self.lapse_key(pairs[index]) for index in known])
        now_ms = int(time.time() * 1000)
        for index, value, lapse in zip(known, values[: len(known)], values[len(known) :], strict=True):
            lapsed = value is None and lapse is not None and int(lapse) <= now_ms
            closed[index] = value == CLOSED or lapsed
        return closed

    def lapse_key(self, pair: Pair) -> str:
        provider, sender, recipient = pair
        return f"{self.prefix}:lapse:{provider}:{sender or '-'}:{recipient}"

    def closes_at(self, pairs: list[Pair]) -> list[float | None]:
        """For each pair, when its open window closes (Unix seconds); ``None`` when it is not known
        open. One round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for pair in pairs:
            pipe.get(self.key(pair))
            pipe.pttl(self.key(pair))
        answers = pipe.execute() if pairs else []
        now = time.time()
        closes: list[float | None] = []
        for pair, value, ttl in zip(pairs, answers[0::2], answers[1::2], strict=True):
            known_open = pair[2] is not None and value == OPEN and ttl > 0
            closes.append(now + ttl / 1000 if known_open else None)
        return closes

    def watch_lapse(self, lapses: Iterable[Lapse]) -> None:
        """Remember when these open windows close, each until its ``keep_until``: once closed with
        no newer message reopening the pair, :meth:`closed_among` says closed. One round trip."""
        pipe = self.redis.pipeline(transaction=False)
        now = time.time()
        for pair, closes, keep_until in lapses:
            if pair[2] and keep_until > now:
                expiry_ms = int((keep_until - now) * 1000)
                pipe.set(self.lapse_key(pair), str(int(closes * 1000)), px=expiry_ms)
        if len(pipe):
            pipe.execute()

    def open(self, pairs: Iterable[Pair], at: datetime | None = None) -> None:
        """These recipients wrote at ``at`` (``None``: now): see :meth:`open_at`."""
        self.open_at((pair, at) for pair in pairs)

    def open_at(self, openings: Iterable[Opening], *, now: float | None = None) -> None:
        """Each pair's recipient wrote at its time (``None``: now; a time ahead of ``now`` counts as
        now): its window is open until that time + ``window_seconds``. A message whose window is
        already over opens nothing, and a window open until later is left as it is. One round trip.
        """
        now_ms = int((time.time() if now is None else now) * 1000)
        keys: list[str] = []
        written: list[int] = []
        for pair, at in openings:
            if pair[2]:
                keys.append(self.key(pair))
                written.append(now_ms if at is None else int(at.timestamp() * 1000))
        if keys:
            self._open_script(keys=keys, args=[now_ms, self.open_ms, *written])

    def move(self, moves: Iterable[tuple[Pair, Pair]]) -> None:
        """The recipient of each ``(old, new)`` is now known as the new one: an open window of the
        old pair becomes the new pair's, with the same expiry. One round trip."""
        keys = [self.key(pair) for move in moves if move[0][2] and move[1][2] for pair in move]
        if keys:
            self._move_script(keys=keys)

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
