"""Rate limits shared by every worker: one GCRA token bucket per (provider, sender) in Redis.

Each take is one Lua script, so it is atomic however many workers ask at once, and it uses Redis'
clock, so workers' clocks do not matter. A take either **grants** a slot ``wait`` seconds from now
(the worker sends then, without holding a thread: the wait happens in its event loop) or, when the
next free slot is further away than ``max_wait``, **defers**: nothing is reserved and the message
is told its own turn behind those deferred before it (spread at the sender's current rate, at most
``DEFER_SPREAD_SECONDS`` ahead), so a backlog comes back once, in order. Every granted slot's
time is kept for ``rate_learning_window_seconds`` (what the learning below counts); a slot that
goes by unused (its message woke up late and took a fresh one) is taken off, so that only sends
are counted.

A message that wakes up more than ``limiter_lateness_seconds`` after its slot (its worker's
event loop was busy) takes a fresh slot rather than go out bunched with the next one.

Just before each send, a worker asks Redis whether the sender is cooling down (another worker may
have met a 429 after this message got its slot) and holds the message back if so.

On a 429 a worker calls :meth:`RedisLimiter.penalize`, which sets the sender's cooldown to the
provider's ``Retry-After`` (or, without one, to an exponential backoff over the 429s seen in a row)
and pushes the bucket past it, so every worker waits and the held-back messages come back paced.
The first 429 after a cooldown opens a *burst*; the 429s of the requests that were already in flight
belong to it. Then the sender's rate factor (its share of the declared rate):

* **learns** the provider's true rate when the burst has the shape of a limit overrun: at least two
  429s, and at least half of the requests sent in the window before it refused. The window held
  ``sent`` sends and ``refused`` of them came back 429, so the provider accepted ``sent - refused``
  per window: the factor drops at once to that rate (not by halves), and is kept there, without
  recovering, for a quiet period: an eighth of ``rate_recovery_delay_seconds`` after a learning,
  doubling after each probe up to all of it;
* when it was climbing back above a learned rate, drops back at the first 429 to what that burst
  counts the provider accepted (up to the rate probed, and one message per window above the
  learned rate at most: a rate learned low is corrected), and waits
  a quiet period twice as long as the last: probing costs one or two 429s, not a burst;
* when a burst comes while at or below a learned rate, the rate learned was too high: the burst's
  own count lowers it; a third such burst in a row makes it forgotten instead (429s that keep
  coming however low the rate goes are not the limit, e.g. a storm of random 429s): the factor
  recovers from there as after any cut;
* otherwise, a lone 429 only pauses, and a repeated one (within 10 s of the last cooldown's end)
  halves the factor, once per cooldown.

Past any quiet period, the factor climbs back by ``rate_recovery_per_second`` of the declared rate
for every second without a 429, up to the declared rate. It never goes below ``rate_min_factor``.

A pair limit (at most one message to the same recipient per ``pair_interval_seconds``) holds a
message back, without using a sender slot, until the recipient's interval has passed.

Keys: ``<prefix>:s:<provider>:<sender>`` (a hash: tat, factor, factor_at, cool_until, strikes and
the learning's fields), ``<prefix>:t:<provider>:<sender>`` (the recent slots' times, a sorted set)
and ``<prefix>:p:<provider>:<sender>:<recipient>`` for the optional pair limit. Idle keys expire.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio
from wadispatch.redisretry import retry_options
from wadispatch.settings import Settings

#: The furthest ahead a deferred message is told to come back (its turn behind a long backlog).
DEFER_SPREAD_SECONDS = 30.0

# A slot that went by unused (its message woke up late) must not count as a send: the latest
# slots before now are dropped, and the open burst's count too if it had them.
_FORGET = """
local function forget_slots(hash, slots, now, count, burst_at)
  local last = redis.call('ZREVRANGEBYSCORE', slots, now, '-inf', 'WITHSCORES', 'LIMIT', 0, count)
  local counted = 0
  for i = 1, #last, 2 do
    redis.call('ZREM', slots, last[i])
    if burst_at and tonumber(last[i + 1]) <= burst_at then counted = counted + 1 end
  end
  if counted > 0 then
    local sent = tonumber(redis.call('HGET', hash, 'sent')) or 0
    redis.call('HSET', hash, 'sent', math.max(0, sent - counted))
  end
end
"""

# The factor now: ``factor`` as of ``factor_at``, plus what recovery gave back since. A
# ``factor_at`` in the future is a quiet period: no recovery until then.
_FACTOR = """
local function current_factor(factor, factor_at, now, recover)
  if factor >= 1 or now <= factor_at then return math.min(1, factor) end
  return math.min(1, factor + recover * (now - factor_at) / 1000)
end
"""

# KEYS: sender hash, pair key (or "" for none), slot times (sorted set)
# ARGV: rate (msg/s), burst, max_wait_ms, pair_interval_ms (0: none), recover_per_s, window_ms,
#       retake (1: a message late for its slot takes a fresh one; its old slot was never used)
# Returns {granted (1/0), wait_ms, now_ms}, numbers as strings (a Lua number would be truncated to
# an integer); now_ms is Redis' clock when the script ran.
ACQUIRE = (
    _FACTOR
    + _FORGET
    + f"local DEFER_SPREAD_MS = {DEFER_SPREAD_SECONDS * 1000:g}"
    + """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local pair_interval = tonumber(ARGV[4])
local recover = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local retake = tonumber(ARGV[7]) == 1
local s = redis.call('HMGET', KEYS[1], 'tat', 'factor', 'factor_at', 'cool_until', 'dtat', 'burst_at')
local tat = tonumber(s[1]) or 0
local factor = current_factor(tonumber(s[2]) or 1, tonumber(s[3]) or now, now, recover)
local cool_until = tonumber(s[4]) or 0
local interval = 1000 / (rate * factor)
if tat < now then tat = now end
local wait = tat - interval * (burst - 1) - now
if cool_until - now > wait then wait = cool_until - now end
if wait < 0 then wait = 0 end
if pair_interval > 0 then
  -- The recipient's own spacing: held back until it passes, without using a sender slot.
  local pair_wait = (tonumber(redis.call('GET', KEYS[2])) or 0) - now
  if pair_wait > wait then
    return {0, tostring(pair_wait), tostring(now)}
  end
end
if wait > max_wait then
  -- Deferred: told to come back at its turn behind the messages deferred before it (up to
  -- DEFER_SPREAD_MS ahead), so a backlog comes back spread at the sender's rate instead of all of
  -- it again a second later. Nothing is reserved: its slot is taken when it comes back.
  local turn = math.max(now + wait, tonumber(s[5]) or 0)
  if turn - now > DEFER_SPREAD_MS then turn = now + DEFER_SPREAD_MS end
  redis.call('HSET', KEYS[1], 'dtat', turn + interval)
  return {0, tostring(turn - now), tostring(now)}
end
local send_at = now + wait
-- Idle keys expire, but not before a quiet period ends (a learned rate is kept that long).
local ttl = math.ceil(math.max(wait + interval, (tonumber(s[3]) or 0) - now)) + 300000
redis.call('HSET', KEYS[1], 'tat', math.max(tat, send_at) + interval)
redis.call('PEXPIRE', KEYS[1], ttl)
if retake then
  -- The late message's old slot went by unused: it must not count as a send.
  forget_slots(KEYS[1], KEYS[3], now, 1, tonumber(s[6]))
end
redis.call('ZADD', KEYS[3], send_at, string.format('%.3f', send_at))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window - 1000)
redis.call('PEXPIRE', KEYS[3], ttl)
if pair_interval > 0 then
  redis.call('SET', KEYS[2], tostring(send_at + pair_interval), 'PX', math.ceil(wait + pair_interval) + 1000)
end
return {1, tostring(wait), tostring(now)}
"""
)

# KEYS: sender hash, slot times (sorted set)
# ARGV: retry_after_ms (-1: none given), backoff_base_ms, backoff_cap_ms, min_factor, recover_per_s,
#       declared rate (msg/s), window_ms, quiet_ms
# Returns the cooldown now in force, in ms, as a string.
PENALIZE = (
    _FACTOR
    + """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local retry_after = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local min_factor = tonumber(ARGV[4])
local recover = tonumber(ARGV[5])
local declared = tonumber(ARGV[6])
local window = tonumber(ARGV[7])
local quiet = tonumber(ARGV[8])
local s = redis.call('HMGET', KEYS[1], 'tat', 'factor', 'factor_at', 'cool_until', 'strikes',
  'sent', 'refused', 'learned', 'refuted', 'lowering', 'burst_at', 'probed', 'quiet')
local tat = tonumber(s[1]) or 0
local factor_at = tonumber(s[3]) or now
local factor = current_factor(tonumber(s[2]) or 1, factor_at, now, recover)
if factor_at < now then factor_at = now end
local old_factor = factor
local cool_until = tonumber(s[4]) or 0
local strikes = tonumber(s[5]) or 0
local sent = tonumber(s[6]) or 0
local refused = tonumber(s[7]) or 0
local learned = tonumber(s[8])
local refuted = tonumber(s[9]) or 0
local lowering = tonumber(s[10]) or 0
local burst_at = tonumber(s[11]) or 0
local probed = tonumber(s[12]) or 1
-- The quiet period after a learning: an eighth of the longest at first, twice as long after
-- each probe, so a rate learned a little low is found again soon and a right one is kept long.
local longest = quiet
quiet = tonumber(s[13]) or longest / 8
if now >= cool_until then
  -- The first 429 after a cooldown opens a burst; 429s from requests that were already in
  -- flight during the cooldown belong to it.
  if now - cool_until > 10000 then
    strikes = 0
    refuted = 0
  end
  strikes = strikes + 1
  -- What went out in the window that ends with the last send before this 429 (about the
  -- refused request's own: the 429 arrives a latency after it, and a window ending now would
  -- miss the first sends the provider counted). The slots whose messages turn out to have
  -- been held back are not counted: slots not reached yet are forgotten (held back by the
  -- cooldown, not sent).
  local last = redis.call('ZREVRANGEBYSCORE', KEYS[2], now, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local last_at = tonumber(last[2]) or now
  -- A tenth wider than the window: sends reach the provider a little later than their slots,
  -- and a slot just a window before the last may have counted there.
  sent = 0
  if last_at > now - window then
    sent = redis.call('ZCOUNT', KEYS[2], '(' .. (last_at - window * 1.1), last_at)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
  burst_at = now
  refused = 0
  lowering = 0
  if learned and factor > learned then
    -- Probing above the learned rate met a 429: back down at once (to what this burst counts,
    -- which may be a little above the learned rate if that was low), quiet again for longer.
    probed = factor
    factor = learned
    quiet = math.min(longest, quiet * 2)
    factor_at = now + quiet
    lowering = 2
  elseif learned then
    -- A 429 at or below the learned rate contradicts it: it was too high, and this burst's
    -- count lowers it; but 429s that keep coming however low it goes (a third burst in a row)
    -- are not the limit (a storm of random 429s): the learned rate is forgotten, and the rate
    -- recovers from here as after any cut.
    refuted = refuted + 1
    if refuted >= 3 then
      factor_at = now
      learned = nil
      refuted = 0
    else
      lowering = 1
    end
  elseif strikes > 1 then
    factor = math.max(min_factor, factor / 2)
    factor_at = now
  end
end
refused = refused + 1
if sent > refused and (lowering > 0 or (refused >= 2 and 2 * refused >= sent)) then
  -- A limit overrun: the provider accepted (sent - refused) over the window. Go straight there.
  local estimate = math.max(min_factor, (sent - refused) * 1000 / window / declared)
  if lowering == 2 then
    -- A probe: what the provider accepted, up to the rate probed, and one message per window
    -- more than the learned rate at most (a count is off by one now and then).
    factor = math.min(estimate, probed, learned + 1000 / window / declared)
    learned = factor
  elseif estimate < factor then
    if lowering == 0 then
      refuted = 0
      quiet = longest / 8
    end
    factor = estimate
    learned = estimate
    factor_at = now + quiet
  end
end
local cooldown = retry_after
if cooldown < 0 then cooldown = math.min(cap, base * 2 ^ (strikes - 1)) end
if now + cooldown > cool_until then cool_until = now + cooldown end
if tat < cool_until then tat = cool_until end
redis.call('HSET', KEYS[1], 'tat', tat, 'factor', factor, 'factor_at', factor_at,
  'cool_until', cool_until, 'strikes', strikes, 'sent', sent, 'refused', refused,
  'refuted', refuted, 'lowering', lowering, 'burst_at', burst_at, 'probed', probed, 'quiet', quiet)
if factor < old_factor then
  -- Slower now: the turns given to deferred messages were counted at the old rate.
  redis.call('HDEL', KEYS[1], 'dtat')
end
if learned then
  redis.call('HSET', KEYS[1], 'learned', learned)
else
  redis.call('HDEL', KEYS[1], 'learned')
end
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(cool_until, factor_at) - now) + 300000)
return tostring(cool_until - now)
"""
)

# KEYS: sender hash. Returns the cooldown left, in ms, as a string ("0" when none).
COOLDOWN_LEFT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local cool_until = tonumber(redis.call('HGET', KEYS[1], 'cool_until')) or 0
if cool_until > now then return tostring(cool_until - now) end
return '0'
"""


# KEYS: sender hashes. Returns the cooldown left of each, in ms, as strings ("0" when none).
COOLDOWNS_LEFT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local left = {}
for i, key in ipairs(KEYS) do
  local cool_until = tonumber(redis.call('HGET', key, 'cool_until')) or 0
  if cool_until > now then left[i] = tostring(cool_until - now) else left[i] = '0' end
end
return left
"""

SenderKey = tuple[str, str | None]
"""(provider, sender)."""


@dataclass(frozen=True)
class Slot:
    """What a take gave: ``granted`` to send in ``wait`` seconds, or deferred for about ``wait``."""

    granted: bool
    wait: float


@dataclass(frozen=True)
class SenderState:
    """A sender's limiter state, for reports and tests."""

    factor: float
    cooldown: float
    strikes: int
    learned: float | None = None
    """The factor learned from the provider's 429s (None: none learned)."""


class Limiter(Protocol):
    """Takes slots before sends and is told about 429s."""

    def acquire_many(self, keys: list[tuple[str, str | None, str | None]]) -> list[Slot]: ...

    async def acquire(
        self, provider: str, sender: str | None, recipient: str | None, *, max_wait: float | None = None
    ) -> Slot: ...

    async def penalize(self, provider: str, sender: str | None, retry_after: float | None) -> float: ...

    async def cooldown_left(self, provider: str, sender: str | None) -> float: ...

    async def cooldowns_left(self, keys: list[SenderKey]) -> list[float]: ...


class Unlimited:
    """No shared limit (eager mode, where there is no Redis): every take is granted at once."""

    def acquire_many(self, keys: list[tuple[str, str | None, str | None]]) -> list[Slot]:
        return [Slot(True, 0.0) for _ in keys]

    async def acquire(
        self, provider: str, sender: str | None, recipient: str | None, *, max_wait: float | None = None
    ) -> Slot:
        return Slot(True, 0.0)

    async def penalize(self, provider: str, sender: str | None, retry_after: float | None) -> float:
        return retry_after or 0.0

    async def cooldown_left(self, provider: str, sender: str | None) -> float:
        return 0.0

    async def cooldowns_left(self, keys: list[SenderKey]) -> list[float]:
        return [await self.cooldown_left(*key) for key in keys]


class RedisLimiter:
    """The shared limiter. ``acquire_many`` is one pipelined round trip for a whole batch."""

    def __init__(self, redis_url: str, settings: Settings, *, prefix: str | None = None) -> None:
        self.settings = settings
        self.prefix = prefix or settings.limiter_prefix
        # A connection lost to a Redis restart is retried (see wadispatch.redisretry), never
        # reported as a failed take: a send must not count an attempt for it.
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=5, socket_connect_timeout=5, **retry_options()
        )
        # Many sends of one event loop ask at once: they wait for a pooled connection rather
        # than fail when all are busy.
        self.async_redis = redis.asyncio.Redis(
            connection_pool=redis.asyncio.BlockingConnectionPool.from_url(
                redis_url,
                max_connections=32,
                timeout=5,
                socket_timeout=5,
                socket_connect_timeout=5,
                **retry_options(asynchronous=True),
            )
        )
        self._acquire = self.redis.register_script(ACQUIRE)
        self._acquire_async = self.async_redis.register_script(ACQUIRE)
        self._penalize = self.async_redis.register_script(PENALIZE)
        self._cooldown_left = self.async_redis.register_script(COOLDOWN_LEFT)
        self._cooldowns_left = self.async_redis.register_script(COOLDOWNS_LEFT)

    def sender_key(self, provider: str, sender: str | None) -> str:
        return f"{self.prefix}:s:{provider}:{sender or '-'}"

    def slots_key(self, provider: str, sender: str | None) -> str:
        return f"{self.prefix}:t:{provider}:{sender or '-'}"

    def pair_key(self, provider: str, sender: str | None, recipient: str | None) -> str:
        return f"{self.prefix}:p:{provider}:{sender or '-'}:{recipient or '-'}"

    def acquire_many(self, keys: list[tuple[str, str | None, str | None]]) -> list[Slot]:
        """Take a slot for each ``(provider, sender, recipient)``, in order, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for provider, sender, recipient in keys:
            script_keys, args = self._acquire_call(provider, sender, recipient)
            self._acquire(keys=script_keys, args=args, client=pipe)
        answers = pipe.execute()
        if not answers:
            return []
        # A wait counts from when its script ran; the pipeline answers when the last one has. Make
        # every wait count from then, or the batch's first messages would go out late unnoticed.
        answered_at = float(answers[-1][2])
        return [
            Slot(bool(granted), max(0.0, float(wait) - (answered_at - float(ran_at))) / 1000)
            for granted, wait, ran_at in answers
        ]

    async def acquire(
        self, provider: str, sender: str | None, recipient: str | None, *, max_wait: float | None = None
    ) -> Slot:
        """Take a fresh slot for a message that woke up late for its own (which went unused); a
        slot further away than ``max_wait`` (default ``limiter_max_wait_seconds``) is not taken."""
        script_keys, args = self._acquire_call(provider, sender, recipient, max_wait)
        granted, wait, _ = await self._acquire_async(keys=script_keys, args=[*args[:-1], 1])
        return Slot(bool(granted), float(wait) / 1000)

    def _acquire_call(
        self, provider: str, sender: str | None, recipient: str | None, max_wait: float | None = None
    ) -> tuple[list[str], list[float]]:
        settings = self.settings
        limit = settings.sender_limit(provider, sender)
        pair_ms = (limit.pair_interval_seconds or 0) * 1000
        pair_key = self.pair_key(provider, sender, recipient) if pair_ms else ""
        args = [
            limit.rate * settings.rate_headroom,
            limit.burst,
            (settings.limiter_max_wait_seconds if max_wait is None else max_wait) * 1000,
            pair_ms,
            settings.rate_recovery_per_second,
            settings.rate_learning_window_seconds * 1000,
            0,
        ]
        return [self.sender_key(provider, sender), pair_key, self.slots_key(provider, sender)], args

    async def penalize(self, provider: str, sender: str | None, retry_after: float | None) -> float:
        """Record a 429 for a sender; return the cooldown (seconds) every worker now observes."""
        settings = self.settings
        cooldown = await self._penalize(
            keys=[self.sender_key(provider, sender), self.slots_key(provider, sender)],
            args=[
                -1 if retry_after is None else retry_after * 1000,
                settings.backoff_base_seconds * 1000,
                settings.backoff_cap_seconds * 1000,
                settings.rate_min_factor,
                settings.rate_recovery_per_second,
                settings.sender_limit(provider, sender).rate,
                settings.rate_learning_window_seconds * 1000,
                settings.rate_recovery_delay_seconds * 1000,
            ],
        )
        return float(cooldown) / 1000

    async def cooldown_left(self, provider: str, sender: str | None) -> float:
        """Seconds until the sender's cooldown ends (0 when there is none), by Redis' clock."""
        return float(await self._cooldown_left(keys=[self.sender_key(provider, sender)])) / 1000

    async def cooldowns_left(self, keys: list[SenderKey]) -> list[float]:
        """The cooldown left of each (provider, sender), in seconds, in one round trip."""
        if not keys:
            return []
        left = await self._cooldowns_left(keys=[self.sender_key(*key) for key in keys])
        return [float(value) / 1000 for value in left]

    def state(self, provider: str, sender: str | None) -> SenderState:
        """The sender's current rate factor, remaining cooldown, strike count and learned factor."""
        factor, factor_at, cool_until, strikes, learned = self.redis.hmget(
            self.sender_key(provider, sender), "factor", "factor_at", "cool_until", "strikes", "learned"
        )
        seconds, microseconds = self.redis.time()
        now_ms = seconds * 1000 + microseconds / 1000
        factor_value = min(1.0, float(factor or 1))
        if factor_value < 1 and factor_at:
            # A factor_at in the future is a quiet period: no recovery before it.
            elapsed = max(0.0, (now_ms - float(factor_at)) / 1000)
            factor_value = min(1.0, factor_value + self.settings.rate_recovery_per_second * elapsed)
        cooldown = max(0.0, (float(cool_until or 0) - now_ms) / 1000)
        return SenderState(
            factor=factor_value,
            cooldown=cooldown,
            strikes=int(strikes or 0),
            learned=None if learned is None else float(learned),
        )

    def close(self) -> None:
        self.redis.close()


_limiters: dict[int, Limiter] = {}
_limiters_lock = threading.Lock()


def get_limiter(settings: Settings) -> Limiter:
    """The limiter of this process: shared through Redis, or none when rate limiting is off."""
    pid = os.getpid()
    with _limiters_lock:
        limiter = _limiters.get(pid)
        if limiter is None:
            limiter = RedisLimiter(settings.redis_url, settings) if settings.rate_limiting else Unlimited()
            _limiters[pid] = limiter
        return limiter


class CooldownView:
    """A process's view of the senders' cooldowns, read from Redis at most every ``max_age`` s.

    Every send checks its sender's cooldown. One read asks Redis about every sender this loop
    sent for lately, in one round trip, so many senders cost no more than one; a 429 this process
    met is known at once. Belongs to one event loop.
    """

    def __init__(self, limiter: Limiter, max_age: float = 0.1, active_for: float = 60.0) -> None:
        self.limiter = limiter
        self.max_age = max_age
        self.active_for = active_for
        """A sender not asked about for this long is left out of the reads."""
        self._until: dict[SenderKey, float] = {}
        self._read_at: dict[SenderKey, float] = {}
        self._asked_at: dict[SenderKey, float] = {}
        self._noted_at: dict[SenderKey, float] = {}
        self._reading: asyncio.Task[None] | None = None

    async def left(self, provider: str, sender: str | None) -> float:
        """Seconds of cooldown left for the sender (0 when none)."""
        loop = asyncio.get_running_loop()
        key = (provider, sender)
        self._asked_at[key] = loop.time()
        # A read already under way may have started without this sender: then one more.
        for _ in range(2):
            if loop.time() - self._read_at.get(key, float("-inf")) <= self.max_age:
                break
            if self._reading is None:
                self._reading = loop.create_task(self._read())
            await asyncio.shield(self._reading)
        return max(0.0, self._until.get(key, 0.0) - loop.time())

    def note(self, provider: str, sender: str | None, cooldown: float) -> None:
        """Record a cooldown this process learned itself (from a 429)."""
        key = (provider, sender)
        now = asyncio.get_running_loop().time()
        self._until[key] = max(self._until.get(key, 0.0), now + cooldown)
        self._noted_at[key] = now

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            started = loop.time()
            for key in [key for key, at in self._asked_at.items() if started - at > self.active_for]:
                del self._asked_at[key]
                self._read_at.pop(key, None)
                self._noted_at.pop(key, None)
            keys = list(self._asked_at)
            lefts = await self.limiter.cooldowns_left(keys)
            now = loop.time()
            for key, left in zip(keys, lefts, strict=True):
                if left > 0:
                    self._until[key] = max(self._until.get(key, 0.0), now + left)
                elif self._noted_at.get(key, float("-inf")) < started:
                    # No cooldown in Redis, and no 429 met here since the read began (one noted
                    # meanwhile may not have reached Redis when it answered): none.
                    self._until[key] = now
                self._read_at[key] = now
        finally:
            self._reading = None
