"""The shared limiter learning a sender's true rate from the provider's 429s, on a real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from wadispatch.ratelimit import DEFER_SPREAD_SECONDS, CooldownView, RedisLimiter
from wadispatch.simulator.limits import SlidingWindows, retry_after_seconds

from tests.support import make_settings

pytestmark = pytest.mark.integration

DECLARED = 80
TRUE_LIMIT = 5
LATENESS = 0.015


@pytest.fixture
def make_limiter(redis_url: str) -> Iterator:
    """Limiters under one fresh key prefix, declared at 80/s."""
    prefix = f"wadispatch-test:learn:{uuid.uuid4().hex[:8]}"
    made: list[RedisLimiter] = []

    def make(**settings: object) -> RedisLimiter:
        values = {"default_rate": DECLARED, "rate_min_factor": 0.01, **settings}
        limiter = RedisLimiter(redis_url, make_settings(**values), prefix=prefix)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        for key in limiter.redis.scan_iter(f"{prefix}:*"):
            limiter.redis.delete(key)
        limiter.close()


@pytest.fixture
def run() -> Iterator:
    """One event loop for the test, as a worker has (the async Redis client stays on it)."""
    with asyncio.Runner() as runner:
        yield runner.run


class Provider:
    """A provider allowing ``limit`` requests in any sliding second, like the simulator."""

    def __init__(self, limit: int) -> None:
        self.windows = SlidingWindows(1.0)
        self.limit = limit
        self.accepted: list[float] = []
        self.refused: list[float] = []

    def answer(self, now: float) -> int | None:
        """None when accepted, else the 429's Retry-After."""
        wait = self.windows.wait("sender", self.limit, now)
        if wait:
            self.refused.append(now)
            return retry_after_seconds(wait)
        self.windows.record("sender", now)
        self.accepted.append(now)
        return None


async def send_all(limiter: RedisLimiter, provider: Provider, count: int, latency: float = 0.1) -> None:
    """Send ``count`` messages as workers do: slot, cooldown check, request, 429 reported."""

    loop = asyncio.get_running_loop()
    view = CooldownView(limiter)

    async def one(index: int) -> None:
        recipient = f"+2557000{index:05d}"
        for _ in range(200):
            [slot] = limiter.acquire_many([("meta", "s1", recipient)])
            due = loop.time() + slot.wait
            await asyncio.sleep(slot.wait)
            for _ in range(5):  # woke up late (a busy loop): a fresh slot, as the engine does
                if not slot.granted or loop.time() - due <= LATENESS:
                    break
                slot = await limiter.acquire("meta", "s1", recipient)
                due = loop.time() + slot.wait
                await asyncio.sleep(slot.wait)
            if not slot.granted:
                continue
            cooling = await view.left("meta", "s1")
            if cooling > 0:  # held back: back later, like the engine's retry after the cooldown
                await asyncio.sleep(cooling)
                continue
            retry_after = provider.answer(time.monotonic())
            await asyncio.sleep(latency)
            if retry_after is None:
                return
            view.note("meta", "s1", await limiter.penalize("meta", "s1", retry_after))
        raise AssertionError("a message never got through")

    await asyncio.wait_for(asyncio.gather(*(one(index) for index in range(count))), timeout=60)


def test_a_sender_declared_far_above_its_limit_learns_it_from_one_burst(make_limiter, run) -> None:
    limiter = make_limiter()
    provider = Provider(TRUE_LIMIT)
    started = time.monotonic()
    run(send_all(limiter, provider, 40))
    elapsed = time.monotonic() - started
    state = limiter.state("meta", "s1")
    assert len(provider.accepted) == 40
    # The first burst (the requests in flight when the limit bit) is nearly all the waste (a
    # busy machine's timing jitter may cost a 429 or two later)...
    assert len(provider.refused) <= 14
    assert len([at for at in provider.refused if at - started > 1.5]) <= 2
    # ...the factor went straight to the provider's rate, not down by halves...
    assert state.learned is not None
    assert 3.5 / DECLARED <= state.learned <= 6 / DECLARED
    # ...and the rest went out near the true rate: 40 at 5/s take 8 s (a busy machine adds some).
    assert elapsed < 40 / TRUE_LIMIT * 1.5


def burst(limiter: RedisLimiter, run, sends: int, refused: int, retry_after: float = 0.3) -> None:
    """``sends`` slots taken and gone out, then ``refused`` of them answered 429."""
    slots = limiter.acquire_many([("meta", "s1", None)] * sends)
    assert all(slot.granted for slot in slots)
    time.sleep(max(slot.wait for slot in slots) + 0.05)
    for _ in range(refused):
        run(limiter.penalize("meta", "s1", retry_after))


def test_the_estimate_is_what_the_provider_accepted_over_the_window(make_limiter, run) -> None:
    limiter = make_limiter(rate_headroom=1.0)
    burst(limiter, run, sends=13, refused=8)  # 13 sent in the last second, 8 refused: 5/s
    state = limiter.state("meta", "s1")
    assert state.learned == pytest.approx(5 / DECLARED)
    assert state.factor == pytest.approx(5 / DECLARED)
    time.sleep(0.35)  # past the cooldown: slots now come 1/5 s apart
    waits = [slot.wait for slot in limiter.acquire_many([("meta", "s1", None)] * 3)]
    assert waits[2] - waits[1] == pytest.approx(0.2, abs=0.02)


def test_a_lone_429_pauses_without_cutting_the_rate(make_limiter, run) -> None:
    limiter = make_limiter()
    burst(limiter, run, sends=10, refused=1)
    state = limiter.state("meta", "s1")
    assert state.factor == 1.0 and state.learned is None
    assert state.cooldown > 0.2


def test_a_learned_rate_is_kept_for_the_quiet_period_then_probed(make_limiter, run) -> None:
    # The longest quiet period 8 s: the first, after a learning, is an eighth of it.
    limiter = make_limiter(rate_recovery_delay_seconds=8.0, rate_recovery_per_second=0.5)
    burst(limiter, run, sends=13, refused=8)
    learned = 5 / DECLARED
    time.sleep(0.8)
    assert limiter.state("meta", "s1").factor == pytest.approx(learned)  # quiet: no recovery
    time.sleep(0.4)
    assert limiter.state("meta", "s1").factor > learned + 0.05  # past it, recovery climbs
    # A 429 while climbing above the learned rate: straight back down, and quiet twice as long.
    run(limiter.penalize("meta", "s1", 0.1))
    assert limiter.state("meta", "s1").factor == pytest.approx(learned)
    time.sleep(1.5)
    state = limiter.state("meta", "s1")
    assert state.factor == pytest.approx(learned) and state.learned == pytest.approx(learned)


def test_a_probe_corrects_a_rate_learned_too_low(make_limiter, run) -> None:
    limiter = make_limiter(rate_recovery_delay_seconds=8.0, rate_recovery_per_second=0.5, rate_headroom=1.0)
    burst(limiter, run, sends=13, refused=10, retry_after=0.2)  # 3/s learned: the provider takes 5
    assert limiter.state("meta", "s1").learned == pytest.approx(3 / DECLARED)
    time.sleep(1.2)  # past the first quiet second: climbing
    burst(limiter, run, sends=6, refused=1)  # the probe: 5 went through in the second, the 6th not
    state = limiter.state("meta", "s1")
    # Up by one message per second (at most, a count being off by one now and then): 4/s.
    assert state.learned == pytest.approx(4 / DECLARED) and state.factor == pytest.approx(4 / DECLARED)


def test_a_429_at_a_learned_rate_that_was_too_high_lowers_it(make_limiter, run) -> None:
    limiter = make_limiter(rate_headroom=1.0)
    burst(limiter, run, sends=16, refused=9, retry_after=0.2)  # 7/s learned: too high
    assert limiter.state("meta", "s1").learned == pytest.approx(7 / DECLARED)
    time.sleep(1.05)  # the first burst's sends out of the window
    burst(limiter, run, sends=6, refused=1)  # at 7/s, a 429 after 5 went through
    state = limiter.state("meta", "s1")
    assert state.learned == pytest.approx(5 / DECLARED) and state.factor == pytest.approx(5 / DECLARED)


def test_429s_that_keep_coming_however_low_the_rate_goes_make_it_forgotten(make_limiter, run) -> None:
    # Random 429s (a storm) shaped like an overrun once: bursts that keep coming at or below the
    # learned rate, three in a row, contradict it: it is forgotten, and the rate recovers again.
    limiter = make_limiter(rate_recovery_per_second=0.5)
    burst(limiter, run, sends=13, refused=8, retry_after=0.2)
    for _ in range(2):
        time.sleep(0.25)
        run(limiter.penalize("meta", "s1", 0.2))
        assert limiter.state("meta", "s1").learned == pytest.approx(5 / DECLARED)  # kept so far
    time.sleep(0.25)
    run(limiter.penalize("meta", "s1", 0.2))
    assert limiter.state("meta", "s1").learned is None
    time.sleep(0.5)
    assert limiter.state("meta", "s1").factor > 5 / DECLARED + 0.2  # climbing back at once


def test_a_backlog_is_deferred_spread_at_the_rate_up_to_a_bound(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=10, rate_headroom=1.0)
    slots = limiter.acquire_many([("meta", "s1", None)] * 400)
    deferred = [slot.wait for slot in slots if not slot.granted]
    assert len(deferred) == 389  # 11 granted within the second of max_wait
    assert deferred[:3] == pytest.approx([1.1, 1.2, 1.3], abs=0.05)  # each at its turn
    assert max(deferred) == pytest.approx(DEFER_SPREAD_SECONDS, abs=0.05)  # not further


def test_a_late_messages_fresh_slot_gives_its_unused_slot_back(make_limiter, run) -> None:
    limiter = make_limiter(rate_headroom=1.0)
    for _ in range(6):
        limiter.acquire_many([("meta", "s1", None)])
    time.sleep(0.1)
    run(limiter.acquire("meta", "s1", None))  # a retake: one of the 6 went by unused
    assert limiter.redis.zcard(limiter.slots_key("meta", "s1")) == 6
