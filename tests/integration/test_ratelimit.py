"""The shared limiter on a real Redis: pacing, bursts, sharing, cooldowns, adaptation, pairs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from wadispatch.ratelimit import CooldownView, RedisLimiter
from wadispatch.settings import SenderLimit

from tests.support import make_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def make_limiter(redis_url: str) -> Iterator:
    """Limiters sharing one fresh key prefix: like two workers of one deployment."""
    prefix = f"wadispatch-test:rl:{uuid.uuid4().hex[:8]}"
    made: list[RedisLimiter] = []

    def make(**settings: object) -> RedisLimiter:
        values = {"rate_headroom": 1.0, "limiter_max_wait_seconds": 1.0, **settings}
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


def takes(limiter: RedisLimiter, count: int, sender: str = "s1", recipient: str = "+255700000001"):
    return limiter.acquire_many([("meta", sender, recipient)] * count)


def test_slots_are_paced_at_the_rate_and_the_rest_deferred(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=10)
    slots = takes(limiter, 15)
    granted = [slot.wait for slot in slots if slot.granted]
    assert len(granted) == 11  # waits 0, 0.1, ..., 1.0 (max_wait 1 s)
    assert granted == pytest.approx([index / 10 for index in range(11)], abs=0.02)
    deferred = [slot.wait for slot in slots if not slot.granted]
    assert len(deferred) == 4
    # Each told to come back at its own turn, one slot apart, not all together a second later.
    assert deferred == pytest.approx([1.1, 1.2, 1.3, 1.4], abs=0.05)


def test_burst_lets_that_many_go_at_once(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=10, default_burst=5)
    waits = [slot.wait for slot in takes(limiter, 7)]
    assert waits[:5] == pytest.approx([0] * 5, abs=0.02)
    assert waits[5:] == pytest.approx([0.1, 0.2], abs=0.02)


def test_headroom_uses_a_share_of_the_declared_rate(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=10, rate_headroom=0.5)
    waits = [slot.wait for slot in takes(limiter, 3)]
    assert waits == pytest.approx([0, 0.2, 0.4], abs=0.02)


def test_declared_senders_get_their_own_rate(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=10, senders={"meta:fast": SenderLimit(rate=100)})
    fast = [slot.wait for slot in takes(limiter, 3, sender="fast")]
    slow = [slot.wait for slot in takes(limiter, 3, sender="slow")]
    assert fast == pytest.approx([0, 0.01, 0.02], abs=0.005)
    assert slow == pytest.approx([0, 0.1, 0.2], abs=0.02)


def test_two_workers_share_one_bucket(make_limiter, run) -> None:
    first, second = make_limiter(default_rate=10), make_limiter(default_rate=10)
    waits = [takes(worker, 1)[0].wait for worker in (first, second, first, second)]
    # Four round trips apart: each later call sees its slot a few ms closer.
    assert waits == pytest.approx([0, 0.1, 0.2, 0.3], abs=0.05)


def test_a_429_with_retry_after_holds_every_worker_back(make_limiter, run) -> None:
    first, second = make_limiter(default_rate=100), make_limiter(default_rate=100)
    cooldown = run(first.penalize("meta", "s1", 2.0))
    assert cooldown == pytest.approx(2.0, abs=0.01)
    [slot] = takes(second, 1)
    assert not slot.granted and 1.9 < slot.wait <= 2.0
    assert takes(second, 1, sender="other")[0].granted  # other senders are not affected
    assert second.state("meta", "s1").cooldown > 1.9
    assert 1.9 < run(second.cooldown_left("meta", "s1")) <= 2.0
    assert run(second.cooldown_left("meta", "other")) == 0
    assert run(second.cooldowns_left([("meta", "other"), ("meta", "s1")]))[0] == 0
    assert 1.9 < run(second.cooldowns_left([("meta", "other"), ("meta", "s1")]))[1] <= 2.0


def test_a_loops_view_reads_every_senders_cooldown_in_one_round_trip(make_limiter, run) -> None:
    first, second = make_limiter(default_rate=100), make_limiter(default_rate=100)
    reads: list[list[tuple[str, str | None]]] = []
    read_many = second.cooldowns_left

    async def counted(keys: list[tuple[str, str | None]]) -> list[float]:
        reads.append(list(keys))
        return await read_many(keys)

    second.cooldowns_left = counted  # type: ignore[method-assign]
    run(first.penalize("meta", "s3", 2.0))  # another worker met a 429 for s3
    view = CooldownView(second, max_age=0.5)

    async def ask_all() -> list[float]:
        await view.left("meta", "s0")  # the first sender alone: one read
        return list(await asyncio.gather(*(view.left("meta", f"s{index}") for index in range(10))))

    lefts = run(ask_all())
    assert [index for index, left in enumerate(lefts) if left > 0] == [3]
    assert 1.8 < lefts[3] <= 2.0
    # The ten senders asked at once share one read (plus the first sender's own).
    assert len(reads) == 2 and len(reads[1]) == 10
    assert run(view.left("meta", "s7")) == 0 and len(reads) == 2  # fresh: no read


def test_without_retry_after_the_cooldown_grows_exponentially(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=100, backoff_base_seconds=0.2, backoff_cap_seconds=10)
    first = run(limiter.penalize("meta", "s1", None))
    time.sleep(first + 0.05)
    second = run(limiter.penalize("meta", "s1", None))
    time.sleep(second + 0.05)
    third = run(limiter.penalize("meta", "s1", None))
    assert [first, second, third] == pytest.approx([0.2, 0.4, 0.8], abs=0.02)
    assert limiter.state("meta", "s1").strikes == 3


def test_a_lone_429_pauses_without_lowering_the_rate(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=100)
    run(limiter.penalize("meta", "s1", 0.2))
    state = limiter.state("meta", "s1")
    assert state.factor == 1.0
    assert state.strikes == 1
    assert state.cooldown > 0.15


def test_repeated_429s_halve_the_rate_once_per_cooldown_and_it_climbs_back(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=100, rate_recovery_per_second=0.5)
    run(limiter.penalize("meta", "s1", 0.2))  # a lone 429: a pause only
    time.sleep(0.25)
    for _ in range(20):  # repeated, and the 429s of the requests in flight together: one halving
        run(limiter.penalize("meta", "s1", 0.2))
    # One halving (twenty would floor it at 0.05), plus what 0.5/s of recovery gave back since.
    assert 0.5 <= limiter.state("meta", "s1").factor < 0.6
    time.sleep(0.25)
    run(limiter.penalize("meta", "s1", 0.2))  # another 429 after the cooldown: halved again
    # (0.5, plus 0.5/s of recovery over the >= 0.25 s slept) / 2
    assert 0.31 <= limiter.state("meta", "s1").factor <= 0.45
    time.sleep(0.3)
    # While lowered, slots are spaced wider than the declared 10 ms.
    waits = [slot.wait for slot in takes(limiter, 3)]
    assert waits[2] - waits[1] > 0.012
    time.sleep(1.6)  # recovery 0.5 of the rate per second: back to the full rate
    assert limiter.state("meta", "s1").factor == pytest.approx(1.0)


def test_the_pair_limit_spaces_messages_to_one_recipient(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=100, default_pair_interval_seconds=0.5)
    first = limiter.acquire_many([("meta", "s1", "+255700000001")])[0]
    again = limiter.acquire_many([("meta", "s1", "+255700000001")])[0]
    other = limiter.acquire_many([("meta", "s1", "+255700000002")])[0]
    assert first.granted and first.wait == pytest.approx(0, abs=0.02)
    assert not again.granted and again.wait == pytest.approx(0.5, abs=0.05)  # no sender slot used
    assert other.granted and other.wait <= 0.011  # the sender's next slot: unaffected by the pair


def test_a_pair_wait_beyond_max_wait_is_deferred(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=100, default_pair_interval_seconds=6)
    assert limiter.acquire_many([("meta", "s1", "+255700000001")])[0].granted
    slot = limiter.acquire_many([("meta", "s1", "+255700000001")])[0]
    assert not slot.granted and 5.9 < slot.wait <= 6.0


def test_a_429_noted_while_a_read_is_under_way_is_kept(make_limiter, run) -> None:
    limiter = make_limiter(default_rate=100)
    view = CooldownView(limiter, max_age=0.0)
    read_many = limiter.cooldowns_left

    async def slow_read(keys: list[tuple[str, str | None]]) -> list[float]:
        answer = await read_many(keys)  # Redis says: no cooldown
        view.note("meta", "s1", 2.0)  # meanwhile this process met a 429 (not in Redis yet)
        return answer

    limiter.cooldowns_left = slow_read  # type: ignore[method-assign]
    assert 1.8 < run(view.left("meta", "s1")) <= 2.0
