"""Sender pools end to end: several senders of one provider, a sticky sender per recipient,
each sender at its own rate limit, progress and the report per sender.

Runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from wadispatch.campaigns import api as campaigns
from wadispatch.ledger import Ledger, messages, sender_assignments
from wadispatch.settings import Settings
from wadispatch.simulator import SimulatorServer

from tests.api_support import Api
from tests.support import (
    CAMPAIGN_TEMPLATE,
    SECRETS,
    campaign_phone,
    make_settings,
    wait_for,
    write_recipients,
)

pytestmark = pytest.mark.integration

POOL = ["1107264639145282", "2207264639145282", "3307264639145282"]
RATE = 20  # per sender, declared to the workers


def pool_settings(**overrides: Any) -> Settings:
    return make_settings(campaign_batch_size=25, campaign_fanout_rows=500, **overrides)


def no_broker(campaign_id: str, first_row: int, last_row: int | None) -> bool:
    return True  # the campaign is only read into the ledger: nothing is sent


def senders_of(ledger: Ledger, campaign_id: str) -> dict[str, str]:
    """recipient → the sender of its message, checked against the sender in its stored request."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.recipient, messages.c.sender, messages.c.request).where(
                messages.c.campaign_id == campaign_id
            )
        ).all()
    for row in rows:
        request = row.request if isinstance(row.request, dict) else json.loads(row.request)
        assert request["sender"] == row.sender
        assert request["to"] == row.recipient
    return {row.recipient: row.sender for row in rows}


def run_campaign(
    tmp_path: Path, ledger: Ledger, name: str, numbers: list[str], settings: Settings, **senders: Any
) -> tuple[campaigns.CampaignProgress, float]:
    source = write_recipients(tmp_path / f"{name}.csv", numbers)
    campaign = campaigns.create_campaign(
        source, CAMPAIGN_TEMPLATE, provider="meta", ledger=ledger, settings=settings, **senders
    )
    done = wait_for(
        lambda: (p := campaigns.progress(campaign.id, ledger=ledger, settings=settings)).done and p,
        timeout=30,
    )
    assert done.states == {"sent": len(numbers)}
    return done, done.duration_seconds


def test_a_pool_of_three_senders_sends_about_three_times_faster_than_one(
    tmp_path: Path,
    ledger: Ledger,
    database_url: str,
    redis_url: str,
    producer_app,
    start_worker,
    sim: httpx.Client,
) -> None:
    # Every slot of a job is waited for (none held back to a later retry): the runs then measure
    # the limits alone, one sender's against three.
    start_worker(database_url, WADISPATCH_DEFAULT_RATE=str(RATE), WADISPATCH_LIMITER_MAX_WAIT_SECONDS="5")
    settings = pool_settings(default_rate=RATE, redis_url=redis_url)
    count = 60

    # A first campaign warms the worker up (connections, clients), so neither run pays for that.
    run_campaign(
        tmp_path, ledger, "warm-up", [campaign_phone(5000 + i) for i in range(3)], settings, senders=POOL
    )
    _, single = run_campaign(
        tmp_path, ledger, "single", [campaign_phone(i) for i in range(count)], settings, sender=POOL[0]
    )
    pooled_progress, pooled = run_campaign(
        tmp_path, ledger, "pooled", [campaign_phone(1000 + i) for i in range(count)], settings, senders=POOL
    )
    print(f"\n{count} messages at {RATE}/s per sender: one sender {single:.2f}s, a pool of 3 {pooled:.2f}s")
    assert single >= 2 * pooled, (single, pooled)

    per_sender = pooled_progress.as_json()["per_sender"]
    assert [item["sender"] for item in per_sender] == POOL
    for item in per_sender:
        assert item["states"] == {"sent": count // 3}
        assert item["remaining"] == 0
        assert item["limit_per_s"] == round(RATE * settings.rate_headroom, 2)
    assert pooled_progress.limit_rate == pytest.approx(3 * RATE * settings.rate_headroom)
    assert pooled_progress.campaign.senders == tuple(POOL)
    assert pooled_progress.campaign.sender == POOL[0]

    sent_by = senders_of(ledger, pooled_progress.campaign.id)
    report_path = tmp_path / "report.csv"
    campaigns.report(pooled_progress.campaign.id, report_path, ledger=ledger)
    with report_path.open(newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert len(report) == count
    assert {line["phone"]: line["sender"] for line in report} == sent_by
    # The simulator saw each message from the sender the ledger recorded.
    received = sim.get("/_sim/stats", params={"log": "true"}).json()
    assert received["requests_total"] == 2 * count + 3


def test_recipients_keep_their_sender_across_campaigns_of_the_pool(tmp_path: Path, ledger: Ledger) -> None:
    settings = pool_settings()
    first_numbers = [campaign_phone(i) for i in range(30)]
    first = campaigns.create_campaign(
        write_recipients(tmp_path / "first.csv", first_numbers),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        senders=POOL,
        ledger=ledger,
        settings=settings,
        dispatch=no_broker,
    )
    first_senders = senders_of(ledger, first.id)
    assert sorted(first_senders.values()) == sorted(POOL * 10)  # spread evenly

    # The same pool in another order, the same recipients in another order, and new ones.
    new_numbers = [campaign_phone(500 + i) for i in range(9)]
    second = campaigns.create_campaign(
        write_recipients(tmp_path / "second.csv", new_numbers + first_numbers[::-1]),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        senders=POOL[::-1],
        ledger=ledger,
        settings=settings,
        dispatch=no_broker,
    )
    second_senders = senders_of(ledger, second.id)
    assert {number: second_senders[number] for number in first_numbers} == first_senders
    assert sorted(second_senders[number] for number in new_numbers) == sorted(POOL * 3)

    # A pool without the first sender: its recipients get a sender of the new pool, the others keep theirs.
    third_pool = [POOL[1], "4407264639145282"]
    third = campaigns.create_campaign(
        write_recipients(tmp_path / "third.csv", first_numbers),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        senders=third_pool,
        ledger=ledger,
        settings=settings,
        dispatch=no_broker,
    )
    third_senders = senders_of(ledger, third.id)
    for number, sender in first_senders.items():
        if sender == POOL[1]:
            assert third_senders[number] == POOL[1]
        else:
            assert third_senders[number] in third_pool
    # The least loaded as the file is read: the pool ends balanced, sticky recipients included.
    loads = Counter(third_senders.values())
    assert abs(loads[POOL[1]] - loads["4407264639145282"]) <= 1, loads
    with ledger.engine.connect() as conn:
        recorded = dict(
            conn.execute(
                select(sender_assignments.c.recipient, sender_assignments.c.sender).where(
                    sender_assignments.c.provider == "meta"
                )
            ).all()
        )
    assert {number: recorded[number] for number in first_numbers} == third_senders


def test_a_single_sender_campaign_records_no_assignments(tmp_path: Path, ledger: Ledger) -> None:
    campaign = campaigns.create_campaign(
        write_recipients(tmp_path / "one.csv", [campaign_phone(i) for i in range(5)]),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=POOL[0],
        ledger=ledger,
        settings=pool_settings(),
        dispatch=no_broker,
    )
    assert set(senders_of(ledger, campaign.id).values()) == {POOL[0]}
    assert campaign.senders is None
    with ledger.engine.connect() as conn:
        assert conn.execute(select(sender_assignments)).first() is None


def test_a_number_suppressed_for_one_sender_of_the_pool_is_skipped(tmp_path: Path, ledger: Ledger) -> None:
    campaigns.suppress([campaign_phone(1)], sender=POOL[2], ledger=ledger)
    campaign = campaigns.create_campaign(
        write_recipients(tmp_path / "s.csv", [campaign_phone(0), campaign_phone(1)]),
        CAMPAIGN_TEMPLATE,
        provider="meta",
        senders=POOL,
        ledger=ledger,
        settings=pool_settings(),
        dispatch=no_broker,
    )
    assert (campaign.accepted, campaign.suppressed) == (1, 1)


@pytest.mark.parametrize(
    ("senders", "path"),
    [([POOL[0], POOL[0]], "senders[1]"), ([], "senders"), ([str(i) for i in range(51)], "senders")],
)
def test_a_bad_pool_records_nothing(tmp_path: Path, ledger: Ledger, senders: list[str], path: str) -> None:
    from wadispatch.errors import MessageValidationError

    with pytest.raises(MessageValidationError) as caught:
        campaigns.create_campaign(
            write_recipients(tmp_path / "bad.csv", [campaign_phone(0)]),
            CAMPAIGN_TEMPLATE,
            provider="meta",
            senders=senders,
            ledger=ledger,
            settings=pool_settings(),
            dispatch=no_broker,
        )
    assert [error.path for error in caught.value.errors] == [path]
    assert campaigns.list_campaigns(ledger=ledger) == []


# --- over HTTP -----------------------------------------------------------------------------------


def upload(api: Api, numbers: list[str], **fields: Any) -> httpx.Response:
    """``curl -F file=@customers.csv -F template=@template.json -F provider=meta -F senders=A ...``."""
    content = "phone,name,order\n" + "".join(f"{number},Ann,{i}\n" for i, number in enumerate(numbers))
    files = {
        "file": ("customers.csv", content.encode(), "text/csv"),
        "template": ("template.json", json.dumps(CAMPAIGN_TEMPLATE)),
    }
    return api.client.post("/v1/campaigns", files=files, data={"provider": "meta", **fields})


def test_a_pool_over_http_shows_its_senders_and_their_progress(api: Api) -> None:
    answer = upload(api, [campaign_phone(i) for i in range(6)], senders=[POOL[0], f"{POOL[1]}, {POOL[2]}"])
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert (accepted["sender"], accepted["senders"]) == (POOL[0], POOL)

    progress = api.client.get(f"/v1/campaigns/{accepted['campaign_id']}").json()
    assert progress["senders"] == POOL
    assert [(item["sender"], item["states"], item["remaining"]) for item in progress["per_sender"]] == [
        (sender, {"pending": 2}, 2) for sender in POOL
    ]
    single = upload(api, [campaign_phone(100)], sender=POOL[0]).json()
    progress = api.client.get(f"/v1/campaigns/{single['campaign_id']}").json()
    assert single["senders"] == [POOL[0]]
    assert [(item["sender"], item["states"]) for item in progress["per_sender"]] == [
        (POOL[0], {"pending": 1})
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"senders": [POOL[0], POOL[0]]}, [("senders[1]", f"repeats senders[0] ({POOL[0]})")]),
        ({"senders": ""}, [("senders", "must list at least one sender")]),
        ({"senders": ",".join(str(i) for i in range(51))}, [("senders", "at most 50 senders (got 51)")]),
        ({"senders": POOL[1], "sender": POOL[0]}, [("senders", "give sender or senders, not both")]),
        ({"senders": f"{POOL[0]},{'9' * 300}"}, [("senders[1]", "at most 256 characters for meta")]),
    ],
)
def test_a_bad_pool_over_http_is_422_and_records_nothing(
    api: Api, fields: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    answer = upload(api, [campaign_phone(1)], **fields)
    assert answer.status_code == 422, answer.text
    assert [(error["path"], error["rule"]) for error in answer.json()["errors"]] == expected
    assert campaigns.list_campaigns(ledger=api.ledger) == []


# --- on the command line -------------------------------------------------------------------------


def wadispatch(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("wadispatch")), *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_the_cli_takes_a_pool_as_repeated_senders_and_refuses_a_bad_one(
    tmp_path: Path, simulator: SimulatorServer, redis_url: str, queue_name: str, producer_app
) -> None:
    base = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env = {
        **base,
        "WADISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": queue_name,
        **simulator.base_urls(),
        **SECRETS,
    }
    source = write_recipients(tmp_path / "people.csv", [campaign_phone(i) for i in range(6)])
    template = tmp_path / "template.json"
    template.write_text(json.dumps(CAMPAIGN_TEMPLATE), encoding="utf-8")
    send = ("campaign", "send", str(source), "-m", str(template), "--provider", "meta", "--detach")
    pool = [argument for sender in POOL for argument in ("--sender", sender)]

    started = wadispatch(env, tmp_path, *send, *pool)
    assert started.returncode == 0, started.stderr
    campaign_id = started.stdout.split()[0]
    status = json.loads(wadispatch(env, tmp_path, "campaign", "status", campaign_id, "--json").stdout)
    assert status["senders"] == POOL
    assert [(item["sender"], item["states"]) for item in status["per_sender"]] == [
        (sender, {"pending": 2}) for sender in POOL
    ]
    text = wadispatch(env, tmp_path, "campaign", "status", campaign_id).stdout
    assert f"meta senders {', '.join(POOL)}" in text
    assert all(sender in text.split("created")[1] for sender in POOL)  # the per-sender table
    assert "pool limit (3 senders)" in text

    repeated = wadispatch(env, tmp_path, *send, *pool, "--sender", POOL[1])
    assert repeated.returncode == 1
    assert (
        "invalid --sender" in repeated.stderr
        and f"senders[3]: repeats senders[1] ({POOL[1]})" in repeated.stderr
    )
    too_many = wadispatch(env, tmp_path, *send, *[a for i in range(51) for a in ("--sender", str(i))])
    assert too_many.returncode == 1 and "senders: at most 50 senders (got 51)" in too_many.stderr
