"""Fault injection with real parts: worker crashes, a lost Redis, a provider outage, a 429 storm.

Each test runs a campaign through real worker processes, a real Celery beat running the
reconciler every second (with thresholds of seconds, not minutes), the simulator over loopback
HTTP and the ledger, breaks one part in the middle, and checks the promise: every message ends in
exactly one terminal state with its reason, and the provider is not sent a message twice. The
crash and the lost Redis hit a real 1,000-recipient campaign (a CSV file, the campaign API, the
fan-out task on the workers) whose report must then agree with the ledger; the outage and the
storm run a batch of ``enqueue_many``. Each prints its figures (run with ``-s`` to see them). Run
alone: ``-m faults``.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from wadispatch import enqueue_many
from wadispatch.campaigns import api as campaigns
from wadispatch.celery import point_app_at
from wadispatch.ledger import Ledger, MessageRecord, messages, utcnow
from wadispatch.localstack import EmbeddedRedis, stop_process_group
from wadispatch.simulator import SimulatorConfig, SimulatorServer
from wadispatch.states import State

from tests.integration.conftest import worker_env
from tests.support import CAMPAIGN_TEMPLATE, button_request, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(240)]

#: The reconciler at test speed: beat every second, lost jobs after 3 s, stuck sends after 6 s
#: (well above the longest live attempt here: a 1 s limiter wait plus 10 ms of latency).
FAULT_ENV = {
    "WADISPATCH_RECONCILE_INTERVAL_SECONDS": "1",
    "WADISPATCH_RECONCILE_PENDING_AFTER_SECONDS": "3",
    "WADISPATCH_RECONCILE_SENDING_AFTER_SECONDS": "6",
    "WADISPATCH_DEFAULT_RATE": "150",
}
TERMINAL = {State.SENT, State.FAILED}
#: Jobs of 20 ids, as a campaign publishes them (the fan-out runs on the workers).
CAMPAIGN_ENV = {"WADISPATCH_SEND_BATCH_SIZE": "20"}
CAMPAIGN_SENDER = "1107264639145282"
SIM_CONFIG = SimulatorConfig(latency="fixed", latency_ms=10, sender_limit=None, callbacks=False)


class Provider:
    """The simulator on one port for the whole test, which can go away and come back."""

    def __init__(self) -> None:
        self.server = SimulatorServer(SIM_CONFIG).start()
        self.accepted: list[dict[str, Any]] = []

    def outage(self, seconds: float) -> None:
        """Stop answering (connections refused) for ``seconds``, then serve again on the same port."""
        self.accepted += self.server.stats()["accepted_log"]
        self.server.stop()
        time.sleep(seconds)
        self.server = SimulatorServer(SIM_CONFIG, port=self.server.port).start()

    def accepted_per_recipient(self) -> Counter[str]:
        entries = self.accepted + self.server.stats()["accepted_log"]
        return Counter(entry["recipient"].lstrip("+") for entry in entries)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def provider() -> Iterator[Provider]:
    provider = Provider()
    yield provider
    provider.stop()


@pytest.fixture
def start_beat(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], subprocess.Popen[bytes]]]:
    """Start ``celery beat`` (the reconciler's schedule) with an environment; stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (tmp_path / "beat.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "wadispatch",
                    "beat",
                    "--loglevel=INFO",
                    f"--schedule={tmp_path / 'beat-schedule'}",
                ],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process_group(process, 10)


def campaign(ledger: Ledger, count: int) -> list[str]:
    """``count`` messages to distinct recipients, published 20 per job (a campaign's send path)."""
    requests = [button_request("meta", to=f"+25571{index:07d}") for index in range(count)]
    return [result.message_id for result in enqueue_many(requests, ledger=ledger, batch_size=20)]


def real_campaign(ledger: Ledger, tmp_path: Path, count: int) -> str:
    """A campaign of ``count`` recipients from a CSV file, through the campaign API: its rows go
    into the ledger in batches and its fan-out tasks, published while the file is read, run on the
    workers. Returns the campaign id."""
    source = tmp_path / "customers.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        writer.writerows([f"+2557{index:08d}", f"N{index % 50}", str(index)] for index in range(count))
    settings = make_settings(campaign_batch_size=250, campaign_fanout_rows=250)
    record = campaigns.create_campaign(
        source, CAMPAIGN_TEMPLATE, provider="meta", sender=CAMPAIGN_SENDER, ledger=ledger, settings=settings
    )
    assert (record.rows_read, record.accepted) == (count, count)
    return record.id


def check_report_agrees_with_ledger(ledger: Ledger, tmp_path: Path, campaign_id: str, count: int) -> None:
    """The campaign's progress is done and its report says, row for row, what the ledger says."""
    progress = campaigns.progress(campaign_id, ledger=ledger)
    assert (progress.done, progress.campaign.status, progress.remaining) == (True, "done", 0)
    path = tmp_path / "report.csv"
    assert campaigns.report(campaign_id, path, ledger=ledger) == count
    with path.open(newline="", encoding="utf-8") as handle:
        lines = {line["message_id"]: line for line in csv.DictReader(handle)}
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(messages).where(messages.c.campaign_id == campaign_id)).all()
    assert len(rows) == len(lines) == count
    for row in rows:
        line = lines[row.id]
        assert (int(line["row"]), line["phone"]) == (row.campaign_row, row.recipient)
        assert (line["state"], line["reason"] or None) == (row.state, row.reason)
        assert (line["provider_message_id"] or None) == row.provider_message_id
        assert int(line["attempts"]) == row.attempts
    states = Counter(row.state for row in rows)
    assert progress.states == dict(states)
    assert sum(progress.failed_reasons.values()) == states.get(State.FAILED.value, 0)


def requested_without_answer(ledger: Ledger) -> list[str]:
    """Messages whose request left (``requested_at`` set) and whose answer is not recorded."""
    with ledger.engine.connect() as conn:
        return list(
            conn.execute(
                select(messages.c.id).where(
                    messages.c.state == State.SENDING.value, messages.c.requested_at.is_not(None)
                )
            ).scalars()
        )


def sent_at_least(ledger: Ledger, count: int) -> Callable[[], bool]:
    return lambda: ledger.count_by_state().get(State.SENT.value, 0) >= count


def all_terminal(ledger: Ledger) -> bool:
    return set(ledger.count_by_state()) <= {State.SENT.value, State.FAILED.value}


def outcome(ledger: Ledger, provider: Provider, expected: int) -> tuple[list[MessageRecord], dict[str, Any]]:
    """The ledger's records, checked complete, and the run's figures (printed)."""
    records = ledger.all_messages()
    assert len(records) == expected
    accepted = provider.accepted_per_recipient()
    figures = {
        "states": dict(Counter(record.state.value for record in records)),
        "failed_reasons": dict(Counter(record.reason for record in records if record.state is State.FAILED)),
        "received_twice": sum(1 for count in accepted.values() if count > 1),
        "accepted_by_provider": sum(accepted.values()),
        "max_attempts_used": max(record.attempts for record in records),
    }
    print(figures)
    return records, figures


def test_kill_9_of_one_of_two_workers_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
    database_url: str,
    ledger: Ledger,
    producer_app,
    redis_url: str,
    queue_name: str,
    start_worker,
    start_beat,
    provider,
) -> None:
    provider.server.configure(latency_ms=200)  # a real provider's latency: requests on the wire at the kill
    env = {**provider.server.base_urls(), **FAULT_ENV, **CAMPAIGN_ENV}
    victim = start_worker(database_url, name="victim", concurrency=4, **env)
    start_worker(database_url, name="survivor", concurrency=4, **env)
    start_beat({**worker_env(redis_url, database_url, queue_name, provider.server), **FAULT_ENV})
    campaign_id = real_campaign(ledger, tmp_path, 1000)
    wait_for(sent_at_least(ledger, 250), timeout=60)
    killed_at = utcnow()
    victim.kill()
    time.sleep(0.5)  # let the database finish what the victim had already sent it (a COMMIT)
    at_kill = ledger.count_by_state()
    # The requests on the wire at the kill: marked requested, no answer recorded. The survivor's
    # are among them too, so this bounds the victim's from above.
    on_the_wire = set(requested_without_answer(ledger))
    wait_for(lambda: all_terminal(ledger), timeout=120)
    records, figures = outcome(ledger, provider, 1000)
    accepted = provider.accepted_per_recipient()
    unknown = [record for record in records if record.reason == "unknown_outcome"]
    reached = [record for record in unknown if accepted[record.recipient.lstrip("+")] == 1]
    print(
        {
            "at_kill": at_kill,
            "on_the_wire_at_kill": len(on_the_wire),
            "unknown_outcome": len(unknown),
            "of_which_reached_the_provider": len(reached),
        }
    )
    assert {record.state for record in records} <= TERMINAL
    # The only failures are requests the crash cut off on the wire, settled by the default policy,
    # and no more than were on the wire.
    assert set(figures["failed_reasons"]) <= {"unknown_outcome"}
    assert {record.id for record in unknown} <= on_the_wire
    # Each reached the provider, unless it was marked in the very last instant: a request leaves
    # once its mark is committed, and a kill can fall in between.
    last_instant = killed_at - timedelta(seconds=0.25)
    reached_ids = {record.id for record in reached}
    not_reached = [record for record in unknown if record.id not in reached_ids]
    assert [record.id for record in not_reached if record.requested_at < last_instant] == []
    # Nothing sent twice; everything the provider took is recorded sent or unknown, nothing lost.
    assert figures["received_twice"] == 0
    sent = [record for record in records if record.state is State.SENT]
    assert all(accepted[record.recipient.lstrip("+")] == 1 for record in sent)
    assert sum(accepted.values()) == len(sent) + len(reached)
    assert len(sent) + len(unknown) == 1000
    check_report_agrees_with_ledger(ledger, tmp_path, campaign_id, 1000)


def test_redis_lost_and_restarted_empty_mid_campaign_loses_nothing(
    tmp_path: Path,
    database_url: str,
    ledger: Ledger,
    producer_app,
    queue_name: str,
    start_worker,
    start_beat,
    provider,
    redis_url,
) -> None:
    broker = EmbeddedRedis().start()
    try:
        point_app_at(broker.url, queue_name)
        env = {**provider.server.base_urls(), **FAULT_ENV, **CAMPAIGN_ENV, "WADISPATCH_REDIS_URL": broker.url}
        start_worker(database_url, name="w1", concurrency=4, **env)
        start_beat({**worker_env(broker.url, database_url, queue_name, provider.server), **FAULT_ENV})
        campaign_id = real_campaign(ledger, tmp_path, 1000)
        wait_for(sent_at_least(ledger, 250), timeout=60)
        broker.restart_empty(down_seconds=1.0)
        at_restart = ledger.count_by_state()
        wait_for(lambda: all_terminal(ledger), timeout=150)
    finally:
        point_app_at(redis_url, queue_name)
        broker.stop()
    records, figures = outcome(ledger, provider, 1000)
    print({"at_restart": at_restart})
    assert {record.state for record in records} <= TERMINAL
    assert set(figures["failed_reasons"]) <= {"unknown_outcome"}
    assert figures["received_twice"] == 0
    check_report_agrees_with_ledger(ledger, tmp_path, campaign_id, 1000)


def test_workers_outlive_three_redis_restarts_and_attempts_count_only_requests(
    database_url: str,
    ledger: Ledger,
    producer_app,
    queue_name: str,
    start_worker,
    start_beat,
    provider,
    redis_url,
) -> None:
    """Redis restarted empty three times under two supervised workers: neither Celery process
    exits (the supervisor never has to restart one), every message ends terminal, none twice, and
    no message counts an attempt for a Redis error (attempts <= the requests the provider saw)."""
    broker = EmbeddedRedis().start()
    try:
        point_app_at(broker.url, queue_name)
        env = {**provider.server.base_urls(), **FAULT_ENV, "WADISPATCH_REDIS_URL": broker.url}
        workers = [
            start_worker(database_url, name=name, concurrency=4, supervised=True, **env)
            for name in ("w1", "w2")
        ]
        celery_pids = [worker.celery_pids() for worker in workers]
        start_beat({**worker_env(broker.url, database_url, queue_name, provider.server), **FAULT_ENV})
        campaign(ledger, 1500)
        at_restarts = []
        for sent, down_seconds in ((250, 1.0), (600, 0.5), (950, 1.5)):
            wait_for(sent_at_least(ledger, sent), timeout=60)
            broker.restart_empty(down_seconds=down_seconds)
            at_restarts.append(ledger.count_by_state())
        wait_for(lambda: all_terminal(ledger), timeout=90)
    finally:
        point_app_at(redis_url, queue_name)
        broker.stop()
    records, figures = outcome(ledger, provider, 1500)
    print({"at_restarts": at_restarts, "celery_pids": celery_pids})
    for worker, pids in zip(workers, celery_pids, strict=True):
        assert worker.process is not None and worker.process.poll() is None, worker.log_tail()
        assert len(pids) == 1 and worker.celery_pids() == pids, worker.log_tail()
        os.kill(pids[0], 0)  # the same Celery process, still there
        assert b"Unrecoverable error" not in worker.log_path.read_bytes()
    assert {record.state for record in records} <= TERMINAL
    assert set(figures["failed_reasons"]) <= {"unknown_outcome"}
    assert figures["received_twice"] == 0
    # The simulator accepted every request it got (nothing scripted), so the accepted log counts
    # each message's requests.
    answers = provider.server.stats(include_log=False)["answers_total"]
    assert {kind: count for kind, count in answers.items() if count and kind != "accepted"} == {}
    accepted = provider.accepted_per_recipient()
    over = [(r.id, r.attempts) for r in records if r.attempts > accepted[r.recipient.lstrip("+")]]
    assert over == []


def test_provider_unreachable_for_10_s_ends_all_sent_within_the_retry_budget(
    database_url: str, ledger: Ledger, producer_app, start_worker, provider
) -> None:
    # Backoff 0.2 s doubling to a 2 s cap (test speed): 30 attempts wait ~26 s on average, so a
    # 10 s outage fits. With the defaults (1 s doubling to 300 s, 10 attempts) it is ~4 minutes.
    env = {**provider.server.base_urls(), **FAULT_ENV, "WADISPATCH_MAX_ATTEMPTS": "30"}
    start_worker(database_url, name="w1", concurrency=4, **env)
    campaign(ledger, 500)
    wait_for(sent_at_least(ledger, 100), timeout=60)
    started = time.monotonic()
    provider.outage(10.0)
    wait_for(lambda: all_terminal(ledger), timeout=120)
    records, figures = outcome(ledger, provider, 500)
    print({"seconds_from_outage_to_all_terminal": round(time.monotonic() - started, 1)})
    assert [record.id for record in records if record.state is not State.SENT] == []
    assert figures["max_attempts_used"] <= 30


def test_a_20_s_storm_of_429s_fails_no_message(
    database_url: str, ledger: Ledger, producer_app, start_worker, provider
) -> None:
    env = {**provider.server.base_urls(), **FAULT_ENV}  # the default retry budget: 10 attempts
    start_worker(database_url, name="w1", concurrency=4, **env)
    campaign(ledger, 500)
    wait_for(sent_at_least(ledger, 50), timeout=60)
    provider.server.configure(rate_limited_rate=0.5)
    time.sleep(20)
    provider.server.configure(rate_limited_rate=0.0)
    wait_for(lambda: all_terminal(ledger), timeout=120)
    records, _ = outcome(ledger, provider, 500)
    answers = provider.server.stats(include_log=False)["answers_total"]
    print({"answers": {kind: count for kind, count in answers.items() if count}})
    assert answers["rate_limited"] > 0
    assert [record.id for record in records if record.state is not State.SENT] == []
