"""The reconciler's guards on a real ledger and Redis: it holds back republishing while nobody
consumes the queue, one run at a time per queue, and its paging finds every overdue message.

SQLite always, PostgreSQL when TEST_DATABASE_URL is set. Each test has a queue of its own, so its
heartbeats, lock and queue lists are its own keys in the shared Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from wadispatch.ledger import Ledger, messages, utcnow
from wadispatch.liveness import beat, heartbeat_key, look, server_time
from wadispatch.messages import validate_send_request
from wadispatch.reconcile import reconcile
from wadispatch.reconciler import run_once
from wadispatch.runlock import RunLock, lock_key
from wadispatch.settings import Settings
from wadispatch.states import State

from tests.support import button_request, make_settings, wait_for

pytestmark = pytest.mark.integration

LATER = timedelta(minutes=11)  # past both default thresholds (10 min)
WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))


class Publisher:
    """Records what the reconciler publishes (optionally slowly, to hold a run open)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.published: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, message_ids: list[str]) -> int:
        time.sleep(self.delay)
        with self.lock:
            self.published += message_ids
        return len(message_ids)


@pytest.fixture
def queue() -> str:
    return f"wadispatch-test-rc-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(redis_url: str, queue: str) -> Iterator[redis.Redis]:
    """The test Redis; this test's own keys are deleted afterwards (never the whole database)."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.delete(heartbeat_key(queue), lock_key(queue), queue)
    client.close()


def settings_for(queue: str, **overrides: object) -> Settings:
    return make_settings(queue=queue, **overrides)


def new_messages(ledger: Ledger, count: int, *, sender: str = "1107264639145282") -> list[str]:
    requests = [validate_send_request(button_request(sender=sender)) for _ in range(count)]
    return [message_id for message_id, _ in ledger.record_pending_many(requests)]


def worker_alive(client: redis.Redis, queue: str, name: str = "w1@test") -> None:
    beat(client, [queue], name)


def test_no_worker_heartbeat_holds_back_republishing_until_one_appears(
    ledger: Ledger, client: redis.Redis, queue: str
) -> None:
    ids = new_messages(ledger, 30)
    lost_claims = new_messages(ledger, 4)
    assert len(ledger.claim_many(ledger.load_pending(lost_claims))) == 4  # a dead worker's, never requested
    settings = settings_for(queue)
    publish = Publisher()
    now = utcnow() + LATER

    report = run_once(ledger, settings, publish, client=client, now=now)
    assert (report.republished, report.held_back, report.held_back_stuck) == (0, 30, 4)
    assert report.hold_reason == "no worker alive (none heard from)"
    assert report.workers_alive == 0 and report.last_heartbeat_seconds is None
    assert "held back: no worker alive (none heard from), 30 pending overdue" in report.summary()
    assert publish.published == []
    assert {ledger.get(message_id).state for message_id in lost_claims} == {State.SENDING}

    # A worker last heard from 95 s ago is gone (timeout 60 s): still held back, and the age is said.
    client.zadd(heartbeat_key(queue), {"w0@test": server_time(client) - 95})
    report = run_once(ledger, settings, publish, client=client, now=now + timedelta(seconds=60))
    assert report.held_back == 30 and publish.published == []
    assert report.hold_reason is not None
    assert report.hold_reason.startswith("no worker alive (last heartbeat 9")  # 95 s, a moment more

    worker_alive(client, queue)
    report = run_once(ledger, settings, publish, client=client, now=now + timedelta(seconds=120))
    assert (report.republished, report.never_requested, report.held_back) == (30, 4, 0)
    assert report.hold_reason is None and report.workers_alive == 1
    assert sorted(publish.published) == sorted(ids + lost_claims)


def test_held_back_still_settles_a_request_whose_answer_is_unknown(
    ledger: Ledger, client: redis.Redis, queue: str
) -> None:
    """Under ``fail`` that is a ledger write, no job: it needs no consumer."""
    [stuck] = new_messages(ledger, 1)
    assert len(ledger.claim_many(ledger.load_pending([stuck]))) == 1
    with ledger.begin() as conn:  # its request left, then its worker died
        conn.execute(update(messages).where(messages.c.id == stuck).values(requested_at=utcnow()))
    report = run_once(ledger, settings_for(queue), Publisher(), client=client, now=utcnow() + LATER)
    assert report.hold_reason and (report.stuck_failed, report.held_back_stuck) == (1, 0)
    assert ledger.get(stuck).state is State.FAILED


def test_a_queue_over_its_bound_holds_back_and_a_run_stops_at_the_bound(
    ledger: Ledger, client: redis.Redis, queue: str
) -> None:
    ids = new_messages(ledger, 100)
    worker_alive(client, queue)
    client.rpush(queue, *[b"{}"] * 5)  # five jobs nobody took
    publish = Publisher()
    now = utcnow() + LATER

    report = run_once(
        ledger, settings_for(queue, reconcile_max_queued_jobs=3), publish, client=client, now=now
    )
    assert (report.republished, report.held_back, report.queued_jobs) == (0, 100, 5)
    assert report.hold_reason == "queue holds 5 jobs, over its bound of 3"
    assert publish.published == []

    # Bound 10, 5 queued: room for 5 jobs of 10 ids; the rest wait for a later run.
    settings = settings_for(queue, reconcile_max_queued_jobs=10, send_batch_size=10, reconcile_page_size=10)
    report = run_once(ledger, settings, publish, client=client, now=now)
    assert (report.republished, report.held_back) == (50, 50)
    assert report.hold_reason == "queue reached its bound of 10 jobs"
    client.delete(queue)
    report = run_once(ledger, settings, publish, client=client, now=now + timedelta(seconds=1))
    assert (report.republished, report.held_back) == (50, 0)
    assert Counter(publish.published) == Counter(ids)  # every one, once


def test_a_second_run_finds_the_lock_held_and_exits_at_once(
    ledger: Ledger, client: redis.Redis, queue: str
) -> None:
    ids = new_messages(ledger, 40)
    worker_alive(client, queue)
    settings = settings_for(queue, reconcile_page_size=10)
    now = utcnow() + LATER
    slow = Publisher(delay=0.5)  # four pages: the first run holds the lock for about 2 s
    reports = []
    first = threading.Thread(
        target=lambda: reports.append(run_once(ledger, settings, slow, client=client, now=now))
    )
    first.start()
    wait_for(lambda: client.exists(lock_key(queue)), timeout=10, interval=0.01)
    started = time.perf_counter()
    second = run_once(ledger, settings, Publisher(), client=client, now=now)
    assert time.perf_counter() - started < 0.5
    first.join(30)
    assert second.locked_out and second.republished == 0
    assert second.lock_holder and second.lock_holder.count(":") == 2  # host:pid:nonce
    assert second.summary().startswith("skipped: another reconciler run holds the lock")
    assert reports[0].republished == 40 and not reports[0].locked_out
    assert sorted(slow.published) == sorted(ids)
    assert not client.exists(lock_key(queue))  # released at the end


def test_a_lock_left_by_a_dead_run_expires(ledger: Ledger, client: redis.Redis, queue: str) -> None:
    new_messages(ledger, 3)
    worker_alive(client, queue)
    dead = RunLock(client, queue, ttl_seconds=0.3)
    assert dead.acquire()
    settings = settings_for(queue)
    assert run_once(ledger, settings, Publisher(), client=client, now=utcnow() + LATER).locked_out
    time.sleep(0.4)
    report = run_once(ledger, settings, Publisher(), client=client, now=utcnow() + LATER)
    assert (report.locked_out, report.republished) == (False, 3)
    dead.release()  # no longer its own: the lock is gone already, nothing else is freed


def test_redis_unreachable_holds_back_and_settles_what_needs_no_broker(ledger: Ledger, queue: str) -> None:
    new_messages(ledger, 5)
    dead_redis = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    report = run_once(ledger, settings_for(queue), Publisher(), client=dead_redis, now=utcnow() + LATER)
    assert (report.hold_reason, report.held_back, report.republished) == ("broker unreachable", 5, 0)
    assert report.lock_holder == "no lock: broker unreachable"


@pytest.mark.parametrize("hold", [False, True])
def test_paging_finds_every_overdue_message_across_senders_and_ties(
    ledger: Ledger, client: redis.Redis, queue: str, hold: bool
) -> None:
    # Three senders, each recorded in two batches of tied times; pages of 7 split every tie.
    ids = []
    for batch in range(2):
        for sender in ("1000000000000001", "1000000000000002", "1000000000000003"):
            ids += new_messages(ledger, 23 + batch, sender=sender)
    if not hold:
        worker_alive(client, queue)
    settings = settings_for(queue, reconcile_page_size=7)
    publish = Publisher()
    now = utcnow() + LATER
    dry = reconcile(ledger, settings, publish, now=now, dry_run=True)
    assert dry.republished == len(ids) == 141
    report = run_once(ledger, settings, publish, client=client, now=now)
    if hold:
        assert (report.held_back, report.republished, publish.published) == (141, 0, [])
    else:
        assert (report.republished, report.held_back) == (141, 0)
        assert Counter(publish.published) == Counter(ids)


def test_look_counts_the_queue_and_its_live_workers(client: redis.Redis, queue: str) -> None:
    worker_alive(client, queue, "a@test")
    client.zadd(heartbeat_key(queue), {"b@test": server_time(client) - 120})
    client.rpush(queue, b"{}", b"{}")
    client.rpush(f"{queue}\x06\x163", b"{}")  # a priority step's list
    state = look(client, queue, timeout_seconds=60)
    assert (state.workers_alive, state.queued_jobs) == (1, 3)
    assert state.last_heartbeat_seconds is not None and state.last_heartbeat_seconds < 5
    client.delete(f"{queue}\x06\x163")


def test_a_real_worker_beats_while_it_consumes_and_forgets_itself_when_it_stops(
    database_url: str, ledger: Ledger, start_worker, redis_url: str, queue_name: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        worker = start_worker(database_url, WADISPATCH_HEARTBEAT_INTERVAL_SECONDS="1")
        key = heartbeat_key(queue_name)
        [name] = wait_for(
            lambda: [m.decode() for m in client.zrange(key, 0, -1) if worker.name in m.decode()]
        )
        assert look(client, queue_name, 60).workers_alive >= 1
        first = client.zscore(key, name)
        wait_for(lambda: (client.zscore(key, name) or 0) > (first or 0), timeout=10)  # it beats again
        worker.stop()
        assert client.zscore(key, name) is None
    finally:
        client.close()


def test_the_command_says_a_run_is_under_way_and_exits(
    tmp_path: Path, redis_url: str, queue: str, client: redis.Redis
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env.update(
        WADISPATCH_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        WADISPATCH_REDIS_URL=redis_url,
        WADISPATCH_QUEUE=queue,
    )
    other = RunLock(client, queue, ttl_seconds=60)
    assert other.acquire()

    def reconcile_command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [WADISPATCH, "reconcile", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = reconcile_command()
    assert done.returncode == 0, done.stderr
    assert "skipped: another reconciler run holds the lock" in done.stdout
    other.release()
    done = reconcile_command("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["locked_out"] is False
    assert report["hold_reason"] == "no worker alive (none heard from)"
    assert report["workers_alive"] == 0 and report["queued_jobs"] == 0
