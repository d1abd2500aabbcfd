"""A campaign's pace and ETA (pure): duration, average and current rate, and when there is no ETA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from wadispatch.campaigns import pace, timeline
from wadispatch.campaigns.api import estimate_eta

T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_nothing_claimed_yet_has_no_figures() -> None:
    figures = pace.pace(
        started_at=None, last_settle_at=None, settled=0, settled_in_window=0, finished=False, now=at(5)
    )
    assert figures == pace.Pace(None, None, None, None, None)


def test_a_running_campaign_counts_to_now_and_its_current_rate_over_the_window() -> None:
    figures = pace.pace(
        started_at=at(0),
        last_settle_at=at(99),
        settled=2000,
        settled_in_window=600,
        finished=False,
        now=at(100),
    )
    assert figures.finished_at is None
    assert figures.duration_seconds == pytest.approx(100.0)
    assert figures.average_rate == pytest.approx(20.0)
    assert figures.current_rate == pytest.approx(600 / pace.WINDOW_SECONDS)


def test_a_young_campaign_uses_the_time_since_its_start_as_the_window() -> None:
    figures = pace.pace(
        started_at=at(0), last_settle_at=at(4), settled=40, settled_in_window=40, finished=False, now=at(4)
    )
    assert pace.window_seconds(at(0), at(4)) == 4.0
    assert figures.current_rate == pytest.approx(10.0)
    assert pace.window_seconds(at(0), at(0.2)) == 1.0  # never a rate over a sliver of time


def test_a_finished_campaign_ends_at_its_last_settle_and_has_no_current_rate() -> None:
    later = at(3600)  # an hour after the end: nothing decays, nothing moves
    figures = pace.pace(
        started_at=at(0), last_settle_at=at(25), settled=500, settled_in_window=0, finished=True, now=later
    )
    assert figures.finished_at == at(25)
    assert figures.duration_seconds == pytest.approx(25.0)
    assert figures.average_rate == pytest.approx(20.0)
    assert figures.current_rate is None


def test_eta_uses_the_lower_of_the_current_rate_and_the_effective_limit() -> None:
    assert pace.eta(1000, 50.0, 76.8, status="running", workers_alive=2) == pace.Eta(20.0, None)
    assert pace.eta(1000, 200.0, 80.0, status="running", workers_alive=1).seconds == pytest.approx(12.5)
    # before anything settled, the limit alone
    assert pace.eta(800, None, 80.0, status="running", workers_alive=1).seconds == pytest.approx(10.0)
    assert pace.eta(800, 0.0, 20.0, status="running", workers_alive=1).seconds == pytest.approx(40.0)
    assert pace.eta(0, 10.0, 80.0, status="running", workers_alive=0) == pace.Eta(0.0, None)


def test_eta_is_unknown_without_a_worker_or_a_broker_and_absent_when_not_running() -> None:
    assert pace.eta(500, 10.0, 80.0, status="running", workers_alive=0) == pace.Eta(None, pace.NO_WORKER)
    assert pace.NO_WORKER == "unknown: no worker running"
    assert pace.eta(500, 10.0, 80.0, status="running", workers_alive=None) == pace.Eta(None, pace.NO_BROKER)
    for status in ("paused", "cancelled", "done"):
        assert pace.eta(500, 10.0, 80.0, status=status, workers_alive=3) == pace.Eta(None, status)
    assert pace.eta(5, None, None, status="running", workers_alive=1).seconds is None


def test_the_older_eta_helper_says_none_when_no_worker_is_alive() -> None:
    assert estimate_eta(1000, 50.0, 76.8, running=True) == pytest.approx(20.0)
    assert estimate_eta(1000, 50.0, 76.8, running=True, workers_alive=0) is None
    assert estimate_eta(500, 10.0, 80.0, running=False) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_slow_timeline_is_reused_for_a_while_and_a_finished_one_for_good(monkeypatch) -> None:
    clock = FakeClock()
    reads: list[str] = []

    def read(ledger: object, campaign_id: str, since: datetime) -> timeline.Timeline:
        reads.append(campaign_id)
        clock.now += cost[campaign_id]  # the query's duration
        return timeline.Timeline(None, None, None, len(reads), 0, 0, 0, 0)

    cost = {"slow": 0.5, "cheap": 0.01, "done": 0.5}
    monkeypatch.setattr(timeline, "read_timeline", read)
    monkeypatch.setattr(timeline, "time", clock)
    ledger = SimpleNamespace(engine=SimpleNamespace(url="sqlite:///unit-cache"))

    def get(campaign_id: str, *, finished: bool = False) -> int:
        return timeline.cached_timeline(ledger, campaign_id, T0, finished=finished).settled  # type: ignore[arg-type]

    first = get("slow")
    clock.now += 1.0  # within 4 x 0.5 s: reused
    assert get("slow") == first and reads.count("slow") == 1
    clock.now += 1.5  # past it: read again
    assert get("slow") != first and reads.count("slow") == 2
    get("cheap")
    get("cheap")  # a cheap query is never reused
    assert reads.count("cheap") == 2
    get("done")
    done = get("done", finished=True)  # the end: read again at once, though fresh
    assert reads.count("done") == 2
    clock.now += 3600
    assert get("done", finished=True) == done and reads.count("done") == 2
    assert get("done", finished=False) != done  # not finished any more (a new read says so)
