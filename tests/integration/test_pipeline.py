"""The whole pipeline with real parts: producer → Redis → Celery worker process → simulator → ledger.

Runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
import redis
from wadispatch import enqueue, enqueue_many
from wadispatch.celery import SEND_TASK, point_app_at
from wadispatch.ledger import Ledger
from wadispatch.publishing import publish_message
from wadispatch.states import State

from tests.support import button_request, list_request, wait_for

pytestmark = pytest.mark.integration

SENDERS = {
    "briq": "255700000001",
    "bird": "channel-1",
    "zixflow": "phone-1",
    "wacr": None,
    "meta": "1107264639145282",
}


def settled(ledger: Ledger, message_id: str) -> bool:
    return ledger.get(message_id).state in (State.SENT, State.FAILED)


def stats(sim: httpx.Client) -> dict[str, Any]:
    return sim.get("/_sim/stats").json()


def script(sim: httpx.Client, provider: str, *answers: dict[str, Any]) -> None:
    sim.post("/_sim/script", json={"provider": provider, "answers": list(answers)}).raise_for_status()


@pytest.fixture
def worker(database_url: str, producer_app, start_worker):
    return start_worker(database_url)


@pytest.mark.parametrize("provider", list(SENDERS))
def test_enqueued_buttons_and_list_end_sent_at_the_provider(
    provider: str, ledger: Ledger, worker, sim: httpx.Client
) -> None:
    sender = {"sender": SENDERS[provider]} if SENDERS[provider] else {"sender": None}
    ids = [
        enqueue(button_request(provider, **sender), ledger=ledger).message_id,
        enqueue(list_request(provider, **sender), ledger=ledger).message_id,
    ]
    wait_for(lambda: all(settled(ledger, message_id) for message_id in ids))
    records = [ledger.get(message_id) for message_id in ids]
    assert [record.state for record in records] == [State.SENT, State.SENT], [
        (r.reason, r.provider_error_message) for r in records
    ]
    accepted = [entry["provider_message_id"] for entry in stats(sim)["accepted_log"]]
    assert sorted(record.provider_message_id for record in records) == sorted(accepted)
    for message_id in ids:
        assert [t.to_state for t in ledger.transitions(message_id)] == [
            State.PENDING,
            State.SENDING,
            State.SENT,
        ]


def test_a_429_then_accepted_ends_sent_after_one_retry(ledger: Ledger, worker, sim: httpx.Client) -> None:
    script(sim, "briq", {"kind": "rate_limited", "retry_after": 1})
    started = time.monotonic()
    message_id = enqueue(button_request("briq"), ledger=ledger).message_id
    wait_for(lambda: settled(ledger, message_id))
    elapsed = time.monotonic() - started
    record = ledger.get(message_id)
    assert (record.state, record.attempts) == (State.SENT, 2)
    assert elapsed >= 1.0  # the provider's Retry-After was honoured
    history = [(t.from_state, t.to_state, t.reason) for t in ledger.transitions(message_id)]
    assert (State.SENDING, State.PENDING, "rate_limited") in history
    assert stats(sim)["answers"]["briq"]["rate_limited"] == 1


def test_a_401_ends_failed_auth_without_a_retry(ledger: Ledger, worker, sim: httpx.Client) -> None:
    script(sim, "bird", {"kind": "auth"})
    message_id = enqueue(button_request("bird", sender="channel-1"), ledger=ledger).message_id
    wait_for(lambda: settled(ledger, message_id))
    time.sleep(1.0)  # a retry, if one were scheduled, would run within the 0.2 s backoff base
    record = ledger.get(message_id)
    assert (record.state, record.reason, record.attempts) == (State.FAILED, "auth", 1)
    assert stats(sim)["requests"]["bird"] == 1


def test_a_job_delivered_twice_sends_once(ledger: Ledger, worker, sim: httpx.Client) -> None:
    message_id = enqueue(button_request("meta"), ledger=ledger).message_id
    assert publish_message(message_id)  # the same job a second time
    assert publish_message(message_id)
    wait_for(lambda: settled(ledger, message_id))
    time.sleep(1.0)  # let the duplicates run
    assert stats(sim)["requests"]["meta"] == 1
    claims = [t for t in ledger.transitions(message_id) if t.to_state is State.SENDING]
    assert len(claims) == 1
    assert ledger.get(message_id).state is State.SENT


def test_broker_down_keeps_the_message_pending_and_returns_its_id(
    ledger: Ledger, producer_app, redis_url: str, queue_name: str
) -> None:
    point_app_at("redis://127.0.0.1:1/0", queue_name)  # nothing listens on port 1
    try:
        started = time.monotonic()
        result = enqueue(button_request("meta"), ledger=ledger)
        elapsed = time.monotonic() - started
    finally:
        point_app_at(redis_url, queue_name)
    assert (result.status, result.published) == ("pending", False)
    assert ledger.get(result.message_id).state is State.PENDING
    assert elapsed < 10


def test_broker_down_keeps_a_bulk_enqueue_pending_and_returns_every_id(
    ledger: Ledger, producer_app, redis_url: str, queue_name: str
) -> None:
    point_app_at("redis://127.0.0.1:1/0", queue_name)  # nothing listens on port 1
    try:
        started = time.monotonic()
        results = enqueue_many([button_request("meta") for _ in range(250)], ledger=ledger)
        elapsed = time.monotonic() - started
    finally:
        point_app_at(redis_url, queue_name)
    assert len(results) == 250
    assert not any(result.published for result in results)
    assert ledger.count_by_state() == {"pending": 250}
    assert elapsed < 10


def test_the_job_carries_only_the_message_id(
    ledger: Ledger, producer_app, redis_url: str, queue_name: str
) -> None:
    result = enqueue(button_request("meta", to="+255799999999"), ledger=ledger)
    client = redis.Redis.from_url(redis_url)
    try:
        raw = wait_for(
            lambda: [m for m in client.lrange(queue_name, 0, -1) if result.message_id.encode() in m], 5
        )
    finally:
        client.close()
    envelope = json.loads(raw[0])
    assert envelope["headers"]["task"] == SEND_TASK
    assert "255799999999" not in raw[0].decode()
    assert json.loads(base64.b64decode(envelope["body"]))[0] == [result.message_id]
