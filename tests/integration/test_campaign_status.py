"""``campaign status`` / ``GET /v1/campaigns/{id}`` / ``progress()`` against a ledger with a run
campaign: start, end, duration, average and current rate, the sender's effective rate, 429s and
retries (checked against what the simulator answered), and the ETA without a worker or a broker.
SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from wadispatch.campaigns import api, pace, timeline
from wadispatch.ledger import Ledger, messages, transitions
from wadispatch.simulator import SimulatorServer
from wadispatch.states import State

from tests.support import CAMPAIGN_TEMPLATE, make_settings, wait_for

pytestmark = pytest.mark.integration

SENDER = "1107264639145282"
RATE = 40
#: Enough rows for a few 429s of the storm (each teaches the limiter a slower rate).
ROWS = 150


def write_csv(path: Path, count: int, first: int = 0) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        writer.writerows([f"+2557{first + i:08d}", "Ann", str(i)] for i in range(count))
    return path


@pytest.fixture
def storm(simulator: SimulatorServer) -> Iterator[None]:
    """Some of the simulator's answers are 429s (Retry-After 0.2 s); undone after the test."""
    simulator.configure(rate_limited_rate=0.06, rate_limited_retry_after=0.2)
    yield
    simulator.configure(rate_limited_rate=0.0, rate_limited_retry_after=1.0)


def test_a_run_campaign_has_its_start_end_rates_429s_and_retries(
    tmp_path: Path,
    ledger: Ledger,
    database_url: str,
    redis_url: str,
    queue_name: str,
    producer_app,
    start_worker,
    sim: httpx.Client,
    storm: None,
) -> None:
    settings = make_settings(
        redis_url=redis_url,
        queue=queue_name,
        default_rate=RATE,
        campaign_batch_size=100,
        campaign_fanout_rows=100,
    )
    start_worker(database_url, WADISPATCH_DEFAULT_RATE=str(RATE))
    source = write_csv(tmp_path / "customers.csv", ROWS)
    campaign = api.create_campaign(
        source, CAMPAIGN_TEMPLATE, provider="meta", sender=SENDER, ledger=ledger, settings=settings
    )

    running = wait_for(
        lambda: (p := api.progress(campaign.id, ledger=ledger, settings=settings)).terminal >= 20 and p,
        timeout=60,
    )
    assert running.started_at is not None and running.finished_at is None
    assert running.throughput is not None and running.throughput > 0
    assert running.workers_alive == 1
    assert running.eta_seconds is not None and running.eta_seconds > 0 and running.eta_note is None
    assert running.limit_rate == pytest.approx(RATE * settings.rate_headroom)
    assert running.effective_rate is not None and 0 < running.effective_rate <= running.limit_rate + 1e-9

    done = wait_for(
        lambda: (p := api.progress(campaign.id, ledger=ledger, settings=settings)).done and p, timeout=90
    )
    assert done.states == {State.SENT.value: ROWS}
    answers = sim.get("/_sim/stats", params={"log": "false"}).json()["answers_total"]
    assert answers["rate_limited"] > 0, answers  # the storm happened
    assert done.rate_limited == answers["rate_limited"]  # every 429 the provider gave, and no other
    assert done.retries >= done.rate_limited  # each 429 sent its message back; the limiter may add more
    assert done.held_back == done.retries - done.rate_limited  # here every other retry is the limiter's
    with ledger.engine.connect() as conn:
        first_claim, last_settle = conn.execute(
            select(
                func.min(transitions.c.at).filter(transitions.c.to_state == State.SENDING.value),
                func.max(transitions.c.at).filter(transitions.c.to_state == State.SENT.value),
            )
            .select_from(transitions.join(messages, messages.c.id == transitions.c.message_id))
            .where(messages.c.campaign_id == campaign.id)
        ).one()
    assert done.started_at.replace(tzinfo=None) == first_claim.replace(tzinfo=None)
    assert done.finished_at.replace(tzinfo=None) == last_settle.replace(tzinfo=None)
    assert done.duration_seconds == pytest.approx((done.finished_at - done.started_at).total_seconds())
    assert done.average_rate == pytest.approx(ROWS / done.duration_seconds)
    assert done.average_rate <= RATE * 1.5  # paced by the limiter (its burst allows a little over)
    assert done.throughput is None  # no rate decaying after the end
    assert (done.eta_seconds, done.eta_note) == (None, "done")

    time.sleep(1.5)  # later reads give the same end, duration and rates: nothing decays
    timeline._cache.clear()  # read from the ledger again, not from this process' cache
    again = api.progress(campaign.id, ledger=ledger, settings=settings)
    assert (again.finished_at, again.duration_seconds, again.average_rate) == (
        done.finished_at,
        done.duration_seconds,
        done.average_rate,
    )
    figures = again.as_json()
    assert figures["rate_limited"] == done.rate_limited and figures["retries"] == done.retries
    assert figures["throughput_per_s"] is None and figures["eta_note"] == "done"
    assert figures["started_at"].startswith(done.started_at.isoformat()[:19])


def test_without_a_worker_the_eta_is_unknown_and_says_why(
    tmp_path: Path, ledger: Ledger, redis_url: str, queue_name: str
) -> None:
    source = write_csv(tmp_path / "idle.csv", 30)
    settings = make_settings(
        redis_url=redis_url,
        queue=f"{queue_name}-idle",
        limiter_prefix=f"{queue_name}-idle",
        default_rate=RATE,
    )
    campaign = api.create_campaign(
        source,
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        ledger=ledger,
        settings=settings,
        dispatch=lambda *_: True,  # queued nowhere: no worker consumes this queue
    )
    idle = api.progress(campaign.id, ledger=ledger, settings=settings)
    assert (idle.workers_alive, idle.eta_seconds, idle.eta_note) == (0, None, "unknown: no worker running")
    assert (idle.started_at, idle.duration_seconds, idle.average_rate, idle.throughput) == (None,) * 4
    assert idle.effective_rate == pytest.approx(RATE * settings.rate_headroom)  # no 429: the full rate
    assert (idle.rate_limited, idle.retries) == (0, 0)

    unreachable = make_settings(redis_url="redis://127.0.0.1:9/0", queue=queue_name, default_rate=RATE)
    blind = api.progress(campaign.id, ledger=ledger, settings=unreachable)
    assert (blind.workers_alive, blind.eta_seconds, blind.eta_note) == (None, None, pace.NO_BROKER)
    assert blind.effective_rate is None and blind.limit_rate == pytest.approx(RATE * settings.rate_headroom)

    api.pause(campaign.id, ledger=ledger)
    paused = api.progress(campaign.id, ledger=ledger, settings=settings)
    assert (paused.eta_seconds, paused.eta_note, paused.workers_alive) == (None, "paused", None)


def test_the_cli_prints_the_new_figures(
    tmp_path: Path, ledger: Ledger, database_url: str, redis_url: str, queue_name: str
) -> None:
    source = write_csv(tmp_path / "cli.csv", 5)
    settings = make_settings(redis_url=redis_url, queue=f"{queue_name}-cli")
    campaign = api.create_campaign(
        source,
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        ledger=ledger,
        settings=settings,
        dispatch=lambda *_: True,
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "WADISPATCH_DATABASE_URL": database_url,
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": f"{queue_name}-cli",
    }
    command = [sys.executable, "-m", "wadispatch", "campaign", "status", campaign.id]
    shown = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "started -, finished -, duration -" in text
    assert "rate: average -, current -" in text
    assert "effective of" in text and "configured" in text
    assert "429s 0, retries 0" in text
    assert "5 remaining, ETA unknown: no worker running" in text
    as_json = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=60)
    figures = json.loads(as_json.stdout)
    assert figures["eta_note"] == "unknown: no worker running" and figures["workers_alive"] == 0
    assert figures["started_at"] is None and figures["rate_limited"] == 0
