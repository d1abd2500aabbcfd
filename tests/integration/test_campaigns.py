"""Campaigns end to end: a file → the ledger → Redis → real workers → the simulator → the report.

Runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from wadispatch.campaigns import api, store
from wadispatch.ledger import Ledger
from wadispatch.settings import Settings
from wadispatch.simulator import SimulatorServer
from wadispatch.states import State

from tests.support import CAMPAIGN_TEMPLATE, make_settings, wait_for

pytestmark = pytest.mark.integration

SENDER = "1107264639145282"
TEMPLATE = CAMPAIGN_TEMPLATE
TERMINAL = {State.SENT.value, State.DELIVERED.value, State.READ.value, State.FAILED.value}


def phone(index: int) -> str:
    return f"+2557{index:08d}"


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        writer.writerows(rows)
    return path


def campaign_settings(**overrides: Any) -> Settings:
    return make_settings(campaign_batch_size=300, campaign_fanout_rows=500, **overrides)


@pytest.fixture
def fates(simulator: SimulatorServer) -> Iterator[Callable[..., None]]:
    """Give recipients closed windows or opt-outs at the simulator; undone after the test."""

    def configure(*, closed: tuple[str, ...] = (), opted_out: tuple[str, ...] = ()) -> None:
        simulator.configure(window_closed_recipients=list(closed), opted_out_recipients=list(opted_out))

    yield configure
    simulator.configure(window_closed_recipients=[], opted_out_recipients=[])


def sim_stats(sim: httpx.Client) -> dict[str, Any]:
    return sim.get("/_sim/stats", params={"log": "false"}).json()


def test_a_2000_row_campaign_ends_with_every_row_accounted_for(
    tmp_path: Path, ledger: Ledger, database_url: str, producer_app, start_worker, sim: httpx.Client, fates
) -> None:
    rows: list[list[str]] = []
    expected: dict[int, str] = {}  # row number → what the report must say (state or skip kind)
    suppressed = [phone(900_000 + i) for i in range(15)]
    closed = [phone(800_000 + i) for i in range(25)]
    opted_out = [phone(700_000 + i) for i in range(10)]
    api.suppress(suppressed[:10], ledger=ledger)  # every sender
    api.suppress(suppressed[10:], sender=SENDER, ledger=ledger)
    api.suppress([phone(950_000)], sender="another-sender", ledger=ledger)  # not this campaign's sender
    fates(closed=tuple(closed), opted_out=tuple(opted_out))
    for index in range(2000):
        number = index + 1
        if index < 20:
            rows.append([f"+2557{index}x", "Ann", str(index)])
            expected[number] = "invalid"
        elif index < 30:
            rows.append([phone(index), "Bartholomew Fitzgerald", str(index)])  # title over 20 once filled
            expected[number] = "invalid"
        elif index < 40:
            rows.append([phone(index)])  # missing columns
            expected[number] = "invalid"
        elif index < 70:
            rows.append([phone(1000 + index - 40), "Dup", str(index)])  # rows 1001..1030 repeat these
            expected[number] = "sent"
        elif index < 85:
            rows.append([suppressed[index - 70], "Sup", str(index)])
            expected[number] = "suppressed"
        elif index < 110:
            rows.append([closed[index - 85], "Closed", str(index)])
            expected[number] = "failed:window_closed"
        elif index < 120:
            rows.append([opted_out[index - 110], "Out", str(index)])
            expected[number] = "failed:opted_out"
        elif index == 120:
            rows.append([phone(950_000), "Other", str(index)])
            expected[number] = "sent"
        else:
            rows.append([phone(index), f"N{index % 50}", str(index)])
            expected[number] = "duplicate" if 1000 <= index < 1030 else "sent"
    source = write_csv(tmp_path / "customers.csv", rows)
    start_worker(database_url, WADISPATCH_DEFAULT_RATE="2000")

    campaign = api.create_campaign(
        source, TEMPLATE, provider="meta", sender=SENDER, ledger=ledger, settings=campaign_settings()
    )
    counts = (campaign.rows_read, campaign.invalid, campaign.duplicate, campaign.suppressed)
    assert counts == (2000, 40, 30, 15)
    assert campaign.accepted == 2000 - 85

    progress = wait_for(lambda: (p := api.progress(campaign.id, ledger=ledger)).done and p, timeout=120)
    assert progress.campaign.status == "done"
    assert progress.remaining == 0
    assert progress.failed_reasons == {"window_closed": 25, "opted_out": 10}
    assert progress.states == {"sent": 2000 - 85 - 35, "failed": 35}

    report_path = tmp_path / "report.csv"
    assert api.report(campaign.id, report_path, ledger=ledger) == 2000
    with report_path.open(newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert [int(line["row"]) for line in report] == list(range(1, 2001))
    by_id = {line["message_id"]: line for line in report if line["message_id"]}
    assert len(by_id) == campaign.accepted
    for line in report:
        want = expected[int(line["row"])]
        got = line["state"] if line["state"] != "failed" else f"failed:{line['reason']}"
        assert got == want, line
    with ledger.engine.connect() as conn:
        from sqlalchemy import select
        from wadispatch.ledger import messages

        records = conn.execute(select(messages).where(messages.c.campaign_id == campaign.id)).all()
    assert len(records) == campaign.accepted
    for record in records:
        line = by_id[record.id]
        assert line["phone"] == record.recipient
        assert line["state"] == record.state and (line["reason"] or None) == record.reason
        assert (line["provider_message_id"] or None) == record.provider_message_id
        assert int(line["attempts"]) == record.attempts
        assert int(line["row"]) == record.campaign_row
        assert record.state in TERMINAL
    sent_ids = {r.provider_message_id for r in records if r.state == State.SENT.value}
    accepted_log = sim.get("/_sim/stats").json()["accepted_log"]
    assert {entry["provider_message_id"] for entry in accepted_log} == sent_ids
    # the simulator's opt-outs are now on the suppression list, for this sender
    learned = {
        item.recipient for item in api.suppressions(sender=SENDER, ledger=ledger) if item.source == "provider"
    }
    assert learned == set(opted_out)


def slow_campaign(tmp_path: Path, ledger: Ledger, count: int) -> store.CampaignRecord:
    source = write_csv(tmp_path / "slow.csv", [[phone(10_000 + i), "Ann", str(i)] for i in range(count)])
    return api.create_campaign(
        source, TEMPLATE, provider="meta", sender=SENDER, ledger=ledger, settings=campaign_settings()
    )


def sent_count(ledger: Ledger, campaign_id: str) -> int:
    return api.progress(campaign_id, ledger=ledger).states.get(State.SENT.value, 0)


def test_pause_holds_and_resume_finishes(
    tmp_path: Path, ledger: Ledger, database_url: str, producer_app, start_worker, sim: httpx.Client
) -> None:
    start_worker(database_url, WADISPATCH_DEFAULT_RATE="40")
    campaign = slow_campaign(tmp_path, ledger, 200)
    wait_for(lambda: sent_count(ledger, campaign.id) >= 20, timeout=60)

    assert api.pause(campaign.id, ledger=ledger).status == "paused"
    assert api.pause(campaign.id, ledger=ledger).status == "paused"  # twice is fine
    time.sleep(2.0)  # in-flight sends finish (the 2 s)
    requests_at_pause = sim_stats(sim)["requests_total"]
    time.sleep(3.0)
    assert sim_stats(sim)["requests_total"] == requests_at_pause
    held = api.progress(campaign.id, ledger=ledger)
    assert held.states.get(State.PENDING.value, 0) > 0
    assert held.states.get(State.SENDING.value, 0) == 0
    assert held.eta_seconds is None

    assert api.resume(campaign.id, ledger=ledger).status == "running"
    assert api.resume(campaign.id, ledger=ledger).status == "running"  # twice is fine
    done = wait_for(lambda: (p := api.progress(campaign.id, ledger=ledger)).done and p, timeout=90)
    assert done.states == {State.SENT.value: 200}
    assert done.campaign.status == "done"
    assert sim_stats(sim)["requests_total"] == 200  # every message sent once


def test_cancel_leaves_nothing_pending_and_sends_nothing_more(
    tmp_path: Path, ledger: Ledger, database_url: str, producer_app, start_worker, sim: httpx.Client
) -> None:
    start_worker(database_url, WADISPATCH_DEFAULT_RATE="40")
    campaign = slow_campaign(tmp_path, ledger, 200)
    wait_for(lambda: sent_count(ledger, campaign.id) >= 10, timeout=60)

    cancelled = api.cancel(campaign.id, ledger=ledger)
    assert api.cancel(campaign.id, ledger=ledger) == 0  # twice is fine
    after = api.progress(campaign.id, ledger=ledger)
    assert after.remaining == 0
    assert set(after.states) <= {State.SENT.value, State.FAILED.value}
    assert after.failed_reasons == {"cancelled": cancelled}
    assert after.states[State.SENT.value] + cancelled == 200
    assert after.campaign.status == "cancelled"
    requests = sim_stats(sim)["requests_total"]
    time.sleep(2.0)
    assert sim_stats(sim)["requests_total"] == requests == after.states[State.SENT.value]
    assert api.resume(campaign.id, ledger=ledger).status == "cancelled"  # a cancelled campaign stays so


def test_unknown_campaign_ids_raise(ledger: Ledger) -> None:
    for call in (api.pause, api.resume, api.cancel, api.progress):
        with pytest.raises(api.UnknownCampaign):
            call("no-such-campaign", ledger=ledger)
