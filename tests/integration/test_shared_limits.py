"""Rate limits shared by real worker processes, seen from the provider's side (the simulator)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC

import httpx
import pytest
from wadispatch import enqueue, enqueue_many
from wadispatch.ledger import Ledger
from wadispatch.states import State

from tests.support import button_request

pytestmark = pytest.mark.integration


def wait_until_settled(ledger: Ledger, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(ledger.get(message_id).state in (State.SENT, State.FAILED) for message_id in ids):
            return
        time.sleep(0.2)
    raise AssertionError(f"not settled within {timeout}s: {ledger.count_by_state()}")


@pytest.fixture
def sender_limit(sim: httpx.Client) -> Iterator:
    """Set the simulator's per-sender limit for one test, and lift it afterwards."""

    def set_limit(limit: int | None) -> None:
        sim.put("/_sim/config", json={"sender_limit": limit}).raise_for_status()

    yield set_limit
    set_limit(None)


@pytest.fixture
def two_workers(database_url: str, producer_app, start_worker):
    """Two worker processes with the shared limiter on, under a fresh key prefix."""

    def start(**env: str) -> None:
        prefix = f"wadispatch-test:rl:{uuid.uuid4().hex[:8]}"
        for name in ("a", "b"):
            start_worker(database_url, name=name, WADISPATCH_LIMITER_PREFIX=prefix, **env)

    return start


def test_two_workers_sharing_a_limit_never_exceed_it(
    ledger: Ledger, sim: httpx.Client, sender_limit, two_workers
) -> None:
    sender_limit(20)
    # The simulator runs as a thread of this busy test process, so the arrival times it records
    # jitter by tens of ms; 10% headroom absorbs that. `make bench` measures the precision with
    # the simulator in a process of its own and the default 4% headroom.
    two_workers(WADISPATCH_DEFAULT_RATE="20", WADISPATCH_RATE_HEADROOM="0.9")
    started = time.monotonic()
    # Jobs of 10: both workers take part.
    requests = [button_request("meta", sender="shared-1", to=f"+2557000{index:05d}") for index in range(80)]
    ids = [
        result.message_id
        for start in range(0, 80, 10)
        for result in enqueue_many(requests[start : start + 10], ledger=ledger)
    ]
    wait_until_settled(ledger, ids, timeout=40)
    elapsed = time.monotonic() - started
    stats = sim.get("/_sim/stats", params={"log": 0}).json()
    assert [ledger.get(message_id).state for message_id in ids] == [State.SENT] * 80
    assert stats["answers"]["meta"]["rate_limited"] == 0
    assert stats["max_request_rate"]["meta"]["shared-1"] <= 20
    assert elapsed >= 80 / 20 - 1  # paced, not sent in one burst
    assert stats["max_request_rate"]["meta"]["shared-1"] >= 15  # and not far below the limit


def test_a_429_with_retry_after_pauses_the_sender_for_every_worker(
    ledger: Ledger, sim: httpx.Client, two_workers
) -> None:
    sim.post(
        "/_sim/script",
        json={
            "provider": "meta",
            "sender": "paused-1",
            "answers": [{"kind": "rate_limited", "retry_after": 2}],
        },
    ).raise_for_status()
    two_workers(WADISPATCH_DEFAULT_RATE="5")
    ids = [
        enqueue(
            button_request("meta", sender="paused-1", to=f"+2557100{index:05d}"), ledger=ledger
        ).message_id
        for index in range(12)
    ]
    wait_until_settled(ledger, ids, timeout=40)
    assert [ledger.get(message_id).state for message_id in ids] == [State.SENT] * 12
    limited_at = min(
        transition.at
        for message_id in ids
        for transition in ledger.transitions(message_id)
        if transition.reason == "rate_limited" and transition.detail.get("status_code") == 429
    )
    accepted = [
        entry["time"]
        for entry in sim.get("/_sim/stats").json()["accepted_log"]
        if entry["sender"] == "paused-1"
    ]
    assert len(accepted) == 12
    # Nothing reached the provider for that sender until the 2 s had passed (the transition
    # is written just after the 429 arrived, hence the small margin).
    assert min(accepted) >= limited_at.astimezone(UTC).timestamp() + 2 - 0.1
