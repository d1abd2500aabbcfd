"""The operations page's view model (pure): campaign lines, sender lines, queue, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wadispatch.api import ops_view
from wadispatch.campaigns.api import CampaignProgress, CampaignRecord
from wadispatch.campaigns.live import SenderLimit
from wadispatch.liveness import QueueState

T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SENDER = "1107264639145282"


def record(**overrides: Any) -> CampaignRecord:
    values: dict[str, Any] = {
        "id": "c-1",
        "name": "order-ready",
        "provider": "meta",
        "sender": SENDER,
        "source": "customers.csv",
        "template": {},
        "status": "running",
        "rows_read": 500,
        "accepted": 500,
        "invalid": 0,
        "duplicate": 0,
        "suppressed": 0,
        "finished_reading_at": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    return CampaignRecord(**{**values, **overrides})


def progress(**overrides: Any) -> CampaignProgress:
    values: dict[str, Any] = {
        "campaign": record(),
        "states": {"pending": 290, "sending": 10, "sent": 180, "failed": 20},
        "failed_reasons": {"window_closed": 15, "opted_out": 5},
        "remaining": 300,
        "settled_recently": 600,
        "throughput": 19.96,
        "limit_rate": 76.8,
        "eta_seconds": 15.03,
        "started_at": T0,
        "duration_seconds": 12.4,
        "average_rate": 16.1,
        "effective_rate": 38.4,
        "rate_limited": 3,
        "retries": 7,
        "held_back": 4,
        "workers_alive": 2,
    }
    return CampaignProgress(**{**values, **overrides})


def test_formatting_of_rates_durations_and_moments() -> None:
    assert ops_view.rate(None) == "-" and ops_view.rate(19.96) == "20.0/s"
    assert ops_view.duration(None) == "-"
    assert [ops_view.duration(s) for s in (6.4, 245, 3723)] == ["6s", "4m05s", "1h02m03s"]
    assert ops_view.moment(None) == "-"
    assert ops_view.moment(T0 + timedelta(seconds=9)) == "2026-11-27 12:00:09"


def test_a_running_campaign_line() -> None:
    row = ops_view.campaign_row(progress())
    assert (row.settled, row.total, row.percent) == (200, 500, 40)
    assert row.states == [("failed", 20), ("pending", 290), ("sending", 10), ("sent", 180)]
    assert row.reasons == [("window_closed", 15), ("opted_out", 5)]  # most first
    assert (row.started, row.finished, row.duration) == ("2026-11-27 12:00:00", "-", "12s")
    assert (row.average_rate, row.current_rate, row.eta) == ("16.1/s", "20.0/s", "15s")
    assert (row.rate_limited, row.retries, row.held_back, row.eta_unknown, row.reading) == (
        3,
        7,
        4,
        False,
        False,
    )


def test_a_campaign_without_a_worker_says_its_eta_is_unknown() -> None:
    row = ops_view.campaign_row(progress(eta_seconds=None, eta_note="unknown: no worker running"))
    assert (row.eta, row.eta_unknown) == ("unknown: no worker running", True)
    paused = ops_view.campaign_row(progress(eta_seconds=None, eta_note="paused"))
    assert (paused.eta, paused.eta_unknown) == ("paused", False)


def test_percent_reaches_100_only_when_everything_settled() -> None:
    almost = progress(states={"sent": 999, "pending": 1}, remaining=1, failed_reasons={})
    assert ops_view.campaign_row(almost).percent == 99
    done = progress(states={"sent": 1000}, remaining=0, failed_reasons={}, throughput=None)
    row = ops_view.campaign_row(done)
    assert (row.percent, row.current_rate) == (100, "-")
    empty = progress(states={}, remaining=0, failed_reasons={}, campaign=record(finished_reading_at=None))
    assert (ops_view.campaign_row(empty).percent, ops_view.campaign_row(empty).reading) == (0, True)


def test_sender_lines_put_the_effective_rate_against_the_limit() -> None:
    halved = SenderLimit("meta", SENDER, 76.8, 0.5, 1.25, 2)
    unknown = SenderLimit("briq", None, 20.0, None, None, None)
    campaigns = [progress(), progress(throughput=5.0, rate_limited=2), progress(throughput=None)]
    meta, briq = ops_view.sender_rows([halved, unknown], campaigns)
    assert (meta.configured, meta.effective, meta.percent_of_limit) == ("76.8/s", "38.4/s", 50)
    assert (meta.current_rate, meta.rate_limited) == ("25.0/s", 8)
    assert (meta.cooldown, meta.cooling) == ("1.2s", True)
    assert (briq.sender, briq.effective, briq.percent_of_limit, briq.cooldown) == (
        "-",
        "unknown",
        None,
        "unknown",
    )
    assert (briq.current_rate, briq.rate_limited, briq.cooling) == ("-", 0, False)
    full = ops_view.sender_rows([SenderLimit("meta", SENDER, 76.8, 1.0, 0.0, 0)], [])[0]
    assert (full.percent_of_limit, full.cooldown, full.cooling) == (100, "none", False)


def test_the_queue_line() -> None:
    assert ops_view.queue_row(None).known is False
    row = ops_view.queue_row(
        QueueState(workers_alive=2, last_heartbeat_seconds=1.4, queued_jobs=3, unacked_jobs=40)
    )
    assert (row.known, row.workers_alive, row.last_heartbeat, row.queued, row.unacked) == (
        True,
        2,
        "1s ago",
        3,
        40,
    )
    assert ops_view.queue_row(QueueState(0, None, 0, 0)).last_heartbeat == "never"


def test_a_failure_line_masks_the_recipient() -> None:
    row = ops_view.failure_row("m-1", T0, "meta", SENDER, "+255712345678", "window_closed", None, "c-1")
    assert row.recipient == "+2557*****678" and "12345" not in row.recipient
    assert (row.at, row.reason, row.code, row.campaign_id) == (
        "2026-11-27 12:00:00",
        "window_closed",
        "-",
        "c-1",
    )
    bare = ops_view.failure_row("m-2", T0, "briq", None, None, None, "500", None)
    assert (bare.sender, bare.recipient, bare.reason, bare.code, bare.campaign_id) == (
        "-",
        "-",
        "unknown",
        "500",
        "-",
    )
