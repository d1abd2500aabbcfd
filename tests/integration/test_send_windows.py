"""Start times, send windows and validity end to end: held messages have no job until their time,
the release publishes them, an expired message is never sent (at the claim, or by the reconciler).

Runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL. Celery beat's release runs are
played by the test (:func:`release_due` every few hundred milliseconds, as beat would run it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from wadispatch.campaigns import api as campaigns
from wadispatch.campaigns import store
from wadispatch.campaigns.holding import release_due
from wadispatch.celery_settings import CONFIG
from wadispatch.ledger import Ledger, utcnow
from wadispatch.producer import enqueue
from wadispatch.publishing import publish_many
from wadispatch.reconcile import reconcile
from wadispatch.settings import Settings
from wadispatch.window import RedisWindows

from tests.api_support import Api, published
from tests.support import (
    CAMPAIGN_TEMPLATE,
    SECRETS,
    button_request,
    campaign_phone,
    make_settings,
    wait_for,
    write_recipients,
)

pytestmark = pytest.mark.integration

SENDER = "1107264639145282"
ZONE = "Asia/Kathmandu"  # UTC+05:45: a window read in the forced zone, not the numbers' (Tanzania)


def settings_for(**overrides: Any) -> Settings:
    return make_settings(campaign_batch_size=50, campaign_fanout_rows=50, **overrides)


def window_opening_in(seconds: float, zone: str) -> str:
    """A one-hour send window opening ``seconds`` from now in ``zone`` (``HH:MM:SS-HH:MM``)."""
    opens = datetime.now(ZoneInfo(zone)) + timedelta(seconds=seconds)
    closes = opens + timedelta(hours=1)
    return f"{opens:%H:%M:%S}-{closes:%H:%M}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def queued_jobs(redis_url: str, queue: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def sends(sim: httpx.Client) -> int:
    return sim.get("/_sim/stats", params={"log": "false"}).json()["requests_total"]


def test_release_runs_on_beat_next_to_the_reconciler() -> None:
    schedule = CONFIG["beat_schedule"]
    assert schedule["wadispatch-release-held"]["task"] == "wadispatch.release_held"
    assert schedule["wadispatch-release-held"]["schedule"] == Settings().release_interval_seconds


def test_held_messages_wait_without_jobs_then_go_when_the_window_opens_and_at_the_start(
    tmp_path: Path,
    ledger: Ledger,
    database_url: str,
    redis_url: str,
    queue_name: str,
    producer_app,
    start_worker,
    sim: httpx.Client,
) -> None:
    worker = start_worker(database_url, concurrency=2)
    settings = settings_for()
    windowed = campaigns.create_campaign(
        write_recipients(tmp_path / "windowed.csv", [campaign_phone(i) for i in range(5)]),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        send_window=window_opening_in(3, ZONE),
        timezone=ZONE,
        ledger=ledger,
        settings=settings,
    )
    start_at = utcnow() + timedelta(seconds=2)
    scheduled = campaigns.create_campaign(
        write_recipients(tmp_path / "scheduled.csv", [campaign_phone(100 + i) for i in range(3)]),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        start_at=start_at.isoformat(),
        ledger=ledger,
        settings=settings,
    )
    held = campaigns.progress(windowed.id, ledger=ledger)
    assert held.waiting_for_window == 5 and held.next_release_at is not None
    assert held.as_json()["schedule"]["timezone"] == ZONE
    assert campaigns.progress(scheduled.id, ledger=ledger).waiting_for_window == 3

    # While they wait: no job in the queue, no send, and the worker (idle) spends next to no CPU.
    cpu_before, waited_from = cpu_seconds(worker.process.pid), time.monotonic()
    released: list[int] = []
    while (
        any(campaigns.progress(c.id, ledger=ledger).waiting_for_window for c in (windowed, scheduled))
        and time.monotonic() - waited_from < 15
    ):
        if not released:
            assert queued_jobs(redis_url, queue_name) == 0
            assert sends(sim) == 0
        released.append(release_due(ledger, publish_many))
        time.sleep(0.25)
    waited = time.monotonic() - waited_from
    worker_cpu = cpu_seconds(worker.process.pid) - cpu_before
    print(f"worker CPU while waiting {waited:.1f}s for the window: {worker_cpu:.3f}s")
    assert waited < 15
    assert worker_cpu < 0.25 * waited  # idle: heartbeats only, no polling of held messages
    assert sum(released) == 8

    for campaign in (windowed, scheduled):
        done = wait_for(
            lambda c=campaign: (p := campaigns.progress(c.id, ledger=ledger)).done and p, timeout=20
        )
        assert done.states == {"sent": done.total} and done.waiting_for_window == 0
    assert sends(sim) == 8
    claims = [ledger.transitions(m.id)[1].at for m in ledger.all_messages() if m.campaign_id == scheduled.id]
    assert min(claims) >= start_at


def test_expired_messages_are_never_sent(
    tmp_path: Path,
    ledger: Ledger,
    database_url: str,
    redis_url: str,
    queue_name: str,
    producer_app,
    start_worker,
    sim: httpx.Client,
) -> None:
    settings = settings_for()
    expires_at = (utcnow() + timedelta(seconds=1.5)).isoformat()
    # Held back until a start after its expiry, and paused: both end failed/expired, unsent.
    held = campaigns.create_campaign(
        write_recipients(tmp_path / "held.csv", [campaign_phone(i) for i in range(3)]),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        start_at=(utcnow() + timedelta(minutes=5)).isoformat(),
        expires_at=expires_at,
        ledger=ledger,
        settings=settings,
    )
    paused = campaigns.create_campaign(
        write_recipients(tmp_path / "paused.csv", [campaign_phone(10 + i) for i in range(3)]),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        valid_for_seconds=1,
        ledger=ledger,
        settings=settings,
        dispatch=lambda *_: True,  # its jobs never reach the queue: only the reconciler finds them
    )
    campaigns.pause(paused.id, ledger=ledger)
    # A single message whose job waits in the queue with no worker until after its validity.
    late = enqueue({**button_request("meta", to=campaign_phone(20)), "valid_for_seconds": 1}, ledger=ledger)
    wait_for(lambda: utcnow() > datetime.fromisoformat(expires_at), timeout=5)

    events = {
        "event_tasks": {"expired": "helpdesk.on_expired"},
        "event_queue": f"{queue_name}-{uuid.uuid4()}",
    }
    worker = start_worker(
        database_url,
        concurrency=2,
        WADISPATCH_EVENT_TASKS=json.dumps(events["event_tasks"]),
        WADISPATCH_EVENT_QUEUE=events["event_queue"],
    )
    record = wait_for(lambda: (r := ledger.get(late.message_id)).state.value == "failed" and r, timeout=20)
    assert record.reason == "expired"  # the late job found it expired at the claim
    quiet = settings_for(redis_url=redis_url, reconcile_pending_after_seconds=3600, **events)
    report = reconcile(ledger, quiet, lambda ids: len(ids))
    assert report.expired == 6
    # An `expired` event per message for the user's code: the worker's one and the reconciler's six.
    emitted = wait_for(
        lambda: len(got := published(redis_url, events["event_queue"])) >= 7 and got, timeout=5
    )
    assert {task for task, _ in emitted} == {"helpdesk.on_expired"}
    assert {args[0] for _, args in emitted} == {m.id for m in ledger.all_messages()}
    assert all(args[1]["type"] == "expired" and args[1]["reason"] == "expired" for _, args in emitted)
    for campaign in (held, paused):
        state = campaigns.progress(campaign.id, ledger=ledger)
        assert state.states == {"failed": 3} and state.failed_reasons == {"expired": 3}
        assert state.expired == 3
    transitions = ledger.transitions(late.message_id)
    assert [(t.to_state.value, t.reason) for t in transitions] == [("pending", None), ("failed", "expired")]
    assert sends(sim) == 0
    worker.stop()


def test_a_message_released_after_its_window_closed_is_held_again_at_the_claim(
    tmp_path: Path,
    ledger: Ledger,
    database_url: str,
    redis_url: str,
    producer_app,
    start_worker,
    sim: httpx.Client,
) -> None:
    numbers = [campaign_phone(i) for i in range(3)]
    campaign = campaigns.create_campaign(
        write_recipients(tmp_path / "night.csv", numbers),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        send_window=window_opening_in(2 * 3600, ZONE),
        timezone=ZONE,
        ledger=ledger,
        settings=settings_for(),
    )
    messages = {m.recipient: m for m in ledger.all_messages()}
    opening = messages[numbers[0]].held_until
    assert opening is not None and all(m.held_until == opening for m in messages.values())
    # The last recipient has no 24-hour window (the provider refused one earlier).
    prefix = f"test-win:{campaign.id}"
    RedisWindows.from_url(redis_url, make_settings(window_prefix=prefix)).close(
        [("meta", SENDER, numbers[2])]
    )
    start_worker(database_url, concurrency=2, WADISPATCH_WINDOW_PREFIX=prefix)
    # Released as if their window had been open, their jobs reach the worker once it has closed.
    released = store.release_held(ledger, opening + timedelta(seconds=1), 100)
    assert sorted(released) == sorted(m.id for m in messages.values())
    publish_many(released)

    def settled() -> bool:
        return all(
            (r := ledger.get(m.id)).held_until is not None or r.state.value == "failed"
            for m in messages.values()
        )

    wait_for(settled, timeout=10)
    assert sends(sim) == 0
    for number in numbers[:2]:  # held again until the same opening, unsent
        record = ledger.get(messages[number].id)
        assert (record.state.value, record.held_until) == ("pending", opening)
    closed = ledger.get(messages[numbers[2]].id)  # not held for nothing: failed as a closed window
    assert (closed.state.value, closed.reason) == ("failed", "window_closed")
    assert campaigns.progress(campaign.id, ledger=ledger).waiting_for_window == 2


def test_a_24_hour_window_closing_before_the_send_window_fails_then_or_goes_as_the_template(
    tmp_path: Path,
    ledger: Ledger,
    database_url: str,
    redis_url: str,
    producer_app,
    start_worker,
    sim: httpx.Client,
) -> None:
    prefix = f"test-lapse:{uuid.uuid4().hex[:8]}"
    settings = settings_for(redis_url=redis_url, window_prefix=prefix)
    windows = RedisWindows.from_url(redis_url, settings)
    plain, with_template = campaign_phone(300), campaign_phone(301)
    # Both wrote almost 24 hours ago: their windows close in 2 s, their send window opens in 6 s.
    wrote = utcnow() - timedelta(seconds=settings.window_seconds - 2)
    windows.open_at([(("meta", SENDER, number), wrote) for number in (plain, with_template)])
    send_window = window_opening_in(6, ZONE)
    common: dict[str, Any] = {"provider": "meta", "sender": SENDER, "send_window": send_window}
    common |= {"timezone": ZONE, "ledger": ledger, "settings": settings, "windows": windows}
    failing = campaigns.create_campaign(
        write_recipients(tmp_path / "plain.csv", [plain]), CAMPAIGN_TEMPLATE, **common
    )
    templated = campaigns.create_campaign(
        write_recipients(tmp_path / "templated.csv", [with_template]),
        CAMPAIGN_TEMPLATE,
        fallback={"name": "order_ready", "language": "en", "body_parameters": ["{name}"]},
        **common,
    )
    [closing] = [m for m in ledger.all_messages() if m.campaign_id == failing.id]
    [opening] = [m for m in ledger.all_messages() if m.campaign_id == templated.id]
    assert closing.held_until is not None and opening.held_until is not None
    assert closing.held_until < opening.held_until  # held only until its 24-hour window closes
    start_worker(database_url, concurrency=2, WADISPATCH_WINDOW_PREFIX=prefix)

    def ended(message_id: str) -> bool:
        release_due(ledger, publish_many)
        return ledger.get(message_id).state.value in ("sent", "failed")

    wait_for(lambda: ended(closing.id), timeout=15, interval=0.25)
    failed = ledger.get(closing.id)
    assert (failed.state.value, failed.reason) == ("failed", "window_closed")
    assert sends(sim) == 0  # failed when its window closed, before its send window, no request
    wait_for(lambda: ended(opening.id), timeout=20, interval=0.25)
    sent = ledger.get(opening.id)
    assert (sent.state.value, sent.sent_as) == ("sent", "template")
    assert ledger.transitions(opening.id)[1].at >= opening.held_until  # inside its send window
    assert sends(sim) == 1


def test_pause_resume_and_cancel_with_held_messages(tmp_path: Path, ledger: Ledger) -> None:
    start_at = utcnow() + timedelta(seconds=1)
    fanouts: list[tuple[str, int, int | None]] = []
    campaign = campaigns.create_campaign(
        write_recipients(tmp_path / "later.csv", [campaign_phone(i) for i in range(4)]),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        start_at=start_at.isoformat(),
        ledger=ledger,
        settings=settings_for(),
        dispatch=lambda *args: fanouts.append(args) is None,
    )
    published: list[str] = []

    def publish(ids: list[str]) -> int:
        published.extend(ids)
        return len(ids)

    campaigns.pause(campaign.id, ledger=ledger)
    wait_for(lambda: utcnow() > start_at, timeout=5)
    assert release_due(ledger, publish) == 0  # paused: held messages stay held
    campaigns.resume(campaign.id, ledger=ledger, dispatch=lambda *args: fanouts.append(args) is None)
    # The resume's fan-out publishes no held message: the release alone does, at their time.
    assert list(store.pending_pages(ledger, campaign.id, 1, None, 100)) == []
    campaigns.pause(campaign.id, ledger=ledger)
    assert campaigns.cancel(campaign.id, ledger=ledger, wait_seconds=0) == 4
    state = campaigns.progress(campaign.id, ledger=ledger)
    assert state.failed_reasons == {"cancelled": 4} and state.waiting_for_window == 0
    assert release_due(ledger, publish) == 0 and published == []


# --- refusals: HTTP 422 naming the field, CLI exit 1 naming the option; nothing recorded ----------


def test_http_shows_held_messages_and_validity(api: Api) -> None:
    files = {
        "file": ("c.csv", f"phone,name,order\n{campaign_phone(1)},Ann,1\n".encode(), "text/csv"),
        "template": ("t.json", json.dumps(CAMPAIGN_TEMPLATE)),
    }
    window = window_opening_in(2 * 3600, ZONE)
    fields = {"provider": "meta", "sender": SENDER, "send_window": window, "timezone": ZONE}
    accepted = api.client.post("/v1/campaigns", files=files, data={**fields, "valid_for_seconds": "600"})
    assert accepted.status_code == 202, accepted.text
    status = api.client.get(f"/v1/campaigns/{accepted.json()['campaign_id']}").json()
    assert status["waiting_for_window"] == 1 and status["next_release_at"] is not None
    assert status["schedule"]["send_window"] == window and status["schedule"]["valid_for_seconds"] == 600
    message = api.client.post(
        "/v1/messages/interactive", json={**button_request("meta"), "valid_for_seconds": 60}
    )
    assert message.status_code == 202, message.text
    shown = api.client.get(f"/v1/messages/{message.json()['message_id']}").json()
    expires_at = datetime.fromisoformat(shown["expires_at"])
    assert timedelta(seconds=55) < expires_at - utcnow() <= timedelta(seconds=60)


BAD_CAMPAIGN_TIMING = {
    "send_window": ({"send_window": "9-17"}, "send_window"),
    "timezone": ({"send_window": "09:00-17:00", "timezone": "Mars/Olympus"}, "timezone"),
    "expires_at": ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    "both": ({"valid_for_seconds": "60", "expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
}


@pytest.mark.parametrize("case", list(BAD_CAMPAIGN_TIMING))
def test_bad_campaign_timing_is_a_422_naming_the_field(case: str, api: Api) -> None:
    fields, path = BAD_CAMPAIGN_TIMING[case]
    files = {
        "file": ("c.csv", f"phone,name,order\n{campaign_phone(1)},Ann,1\n".encode(), "text/csv"),
        "template": ("t.json", json.dumps(CAMPAIGN_TEMPLATE)),
    }
    answer = api.client.post(
        "/v1/campaigns", files=files, data={"provider": "meta", "sender": SENDER, **fields}
    )
    assert answer.status_code == 422, answer.text
    assert [error["path"] for error in answer.json()["errors"]] == [path]
    assert api.ledger.count_by_state() == {}


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"valid_for_seconds": 36_001}, "valid_for_seconds"),
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"expires_at": "2099-01-01T00:00:00"}, "expires_at"),
        ({"valid_for_seconds": 60, "expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_bad_message_validity_is_a_422_naming_the_field(extra: dict[str, Any], path: str, api: Api) -> None:
    answer = api.client.post("/v1/messages/interactive", json={**button_request("meta"), **extra})
    assert answer.status_code == 422, answer.text
    assert [error["path"] for error in answer.json()["errors"]] == [path]
    assert api.ledger.count_by_state() == {}


def test_the_cli_refuses_bad_timing_naming_the_option(
    tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env.update(
        WADISPATCH_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        WADISPATCH_REDIS_URL=redis_url,
        WADISPATCH_QUEUE=queue_name,
        **SECRETS,
    )
    wadispatch = str(Path(sys.executable).with_name("wadispatch"))
    message = tmp_path / "interactive.json"
    message.write_text(json.dumps(button_request("meta")["interactive"]), encoding="utf-8")
    template = tmp_path / "template.json"
    template.write_text(json.dumps(CAMPAIGN_TEMPLATE), encoding="utf-8")
    source = write_recipients(tmp_path / "c.csv", [campaign_phone(1)])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [wadispatch, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    sent = run(
        "send", "--provider", "meta", "--sender", SENDER, "--to", campaign_phone(1),
        "--interactive", str(message), "--valid-for", "36001",
    )  # fmt: skip
    assert sent.returncode == 1, sent.stderr
    assert "--valid-for: must be between 1 and 36,000 seconds" in sent.stderr
    campaign = run(
        "campaign", "send", str(source), "--message", str(template), "--provider", "meta",
        "--sender", SENDER, "--send-window", "09:00-20:00", "--timezone", "Mars/Olympus", "--detach",
    )  # fmt: skip
    assert campaign.returncode == 1, campaign.stderr
    assert "--timezone: unknown time zone 'Mars/Olympus'" in campaign.stderr
