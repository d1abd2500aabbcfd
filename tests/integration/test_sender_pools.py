"""Sender pools end to end: several senders of one provider, a sticky sender per recipient,
each sender at its own rate limit, progress and the report per sender.

Runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from wadispatch.campaigns import api
from wadispatch.ledger import Ledger, messages, sender_assignments
from wadispatch.settings import Settings

from tests.support import CAMPAIGN_TEMPLATE, make_settings, wait_for

pytestmark = pytest.mark.integration

POOL = ["1107264639145282", "2207264639145282", "3307264639145282"]
RATE = 20  # per sender, declared to the workers


def phone(index: int) -> str:
    return f"+2557{index:08d}"


def write_csv(path: Path, numbers: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        writer.writerows([number, "Ann", str(index)] for index, number in enumerate(numbers))
    return path


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
) -> tuple[api.CampaignProgress, float]:
    source = write_csv(tmp_path / f"{name}.csv", numbers)
    campaign = api.create_campaign(
        source, CAMPAIGN_TEMPLATE, provider="meta", ledger=ledger, settings=settings, **senders
    )
    done = wait_for(
        lambda: (p := api.progress(campaign.id, ledger=ledger, settings=settings)).done and p, timeout=30
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
    start_worker(database_url, WADISPATCH_DEFAULT_RATE=str(RATE))
    settings = pool_settings(default_rate=RATE, redis_url=redis_url)
    count = 60

    pooled_progress, pooled = run_campaign(
        tmp_path, ledger, "pooled", [phone(1000 + i) for i in range(count)], settings, senders=POOL
    )
    _, single = run_campaign(
        tmp_path, ledger, "single", [phone(i) for i in range(count)], settings, sender=POOL[0]
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
    api.report(pooled_progress.campaign.id, report_path, ledger=ledger)
    with report_path.open(newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert len(report) == count
    assert {line["phone"]: line["sender"] for line in report} == sent_by
    # The simulator saw each message from the sender the ledger recorded.
    received = sim.get("/_sim/stats", params={"log": "true"}).json()
    assert received["requests_total"] == 2 * count


def test_recipients_keep_their_sender_across_campaigns_of_the_pool(tmp_path: Path, ledger: Ledger) -> None:
    settings = pool_settings()
    first_numbers = [phone(i) for i in range(30)]
    first = api.create_campaign(
        write_csv(tmp_path / "first.csv", first_numbers),
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
    new_numbers = [phone(500 + i) for i in range(9)]
    second = api.create_campaign(
        write_csv(tmp_path / "second.csv", new_numbers + first_numbers[::-1]),
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
    third = api.create_campaign(
        write_csv(tmp_path / "third.csv", first_numbers),
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
    campaign = api.create_campaign(
        write_csv(tmp_path / "one.csv", [phone(i) for i in range(5)]),
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
    api.suppress([phone(1)], sender=POOL[2], ledger=ledger)
    campaign = api.create_campaign(
        write_csv(tmp_path / "s.csv", [phone(0), phone(1)]),
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
        api.create_campaign(
            write_csv(tmp_path / "bad.csv", [phone(0)]),
            CAMPAIGN_TEMPLATE,
            provider="meta",
            senders=senders,
            ledger=ledger,
            settings=pool_settings(),
            dispatch=no_broker,
        )
    assert [error.path for error in caught.value.errors] == [path]
    assert api.list_campaigns(ledger=ledger) == []
