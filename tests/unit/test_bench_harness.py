"""The benchmark's arithmetic, workload and tables (no process started)."""

from __future__ import annotations

import os

import pytest
from rich.console import Console
from wadispatch.messages import validate_send_request

from tests.bench.figures import cpu_seconds, max_in_window, median, observed_rate, percentile, rate, ratio
from tests.bench.options import Sizes
from tests.bench.report import format_value, scenario_table
from tests.bench.results import Column, Ratio, Run, ScenarioResult
from tests.bench.workload import META_TOKEN, meta_requests, meta_senders, provider_requests


def test_observed_rate_counts_intervals_between_first_and_last() -> None:
    paced = [index / 50 for index in range(3000)]  # exactly 50/s
    assert observed_rate(paced) == pytest.approx(50.0)
    assert observed_rate([1.0]) is None
    assert observed_rate([2.0, 2.0]) is None


def test_max_in_window_is_the_busiest_second() -> None:
    times = [0.0, 0.1, 0.2, 0.95, 1.0, 1.05, 3.0]
    assert max_in_window(times, 1.0) == 5  # 0.1 .. 1.05 (0.0 is a full second before 1.0)
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 1.0, 1.5, 2.0], 1.0) == 2


def test_percentiles_and_median() -> None:
    attempts = [1] * 95 + [2, 2, 3, 4, 9]
    assert percentile(attempts, 50) == 1
    assert percentile(attempts, 99) == 4
    assert percentile(attempts, 100) == 9
    assert percentile([], 99) is None
    assert median([1, 2, 3, 10]) == 2.5
    assert median([3, 1, 2]) == 2
    assert median([]) is None


def test_rates_and_ratios_refuse_to_divide_by_nothing() -> None:
    assert rate(100, 2.0) == 50.0
    assert rate(100, 0.0) is None
    assert rate(100, None) is None
    assert ratio(30.0, 60.0) == 0.5
    assert ratio(None, 60.0) is None
    assert ratio(30.0, 0.0) is None


def test_cpu_seconds_of_this_process() -> None:
    if not os.path.exists(f"/proc/{os.getpid()}/stat"):
        pytest.skip("needs Linux /proc")
    before = cpu_seconds(os.getpid())
    sum(index * index for index in range(2_000_000))
    after = cpu_seconds(os.getpid())
    assert before is not None and after is not None and after > before
    assert cpu_seconds(2**22 + 12345) is None  # no such process


def test_quick_sizes_are_smaller_everywhere() -> None:
    full, quick = Sizes(), Sizes.quick()
    assert (full.throughput, full.throughput_naive, full.precision, full.precision_naive) == (
        5000,
        400,
        3000,
        500,
    )
    assert (full.storm, full.enqueue, full.throughput_senders, full.throughput_in_flight) == (
        2000,
        20_000,
        50,
        1000,
    )
    assert (full.paced, full.paced_senders, full.paced_rate) == (8000, 10, 80)
    assert (full.paced_one, full.paced_one_rate, full.paced_one_workers) == (3000, 100, 4)
    names = ("throughput", "throughput_naive", "precision", "precision_naive", "storm", "enqueue")
    for name in (*names, "paced", "paced_one", "campaign", "campaign_naive", "campaign_memory"):
        assert getattr(quick, name) < getattr(full, name)


def test_the_workload_is_valid_and_the_references_send_what_the_adapter_builds() -> None:
    requests = meta_requests(45, 20)
    assert len({request["sender"] for request in requests}) == 20
    for request in requests:
        validate_send_request(request)
    built = provider_requests(requests[:3], "http://127.0.0.1:9/v23.0")
    assert built[0].url == f"http://127.0.0.1:9/v23.0/{requests[0]['sender']}/messages"
    assert built[0].headers["Authorization"] == f"Bearer {META_TOKEN}"
    assert built[0].body["type"] == "interactive"
    assert built[0].body["to"] == requests[0]["to"].lstrip("+")
    assert meta_requests(45, 20) == requests  # the same seed, the same messages
    other = meta_requests(45, 20, batch=7)  # ... from senders of another batch
    assert [request["to"] for request in other] == [request["to"] for request in requests]
    assert not {request["sender"] for request in other} & {request["sender"] for request in requests}
    assert all(len(sender) == 15 and sender.isdigit() for sender in meta_senders(3, 999_999))


def test_a_scenario_table_shows_runs_then_ratios_with_their_verdicts() -> None:
    result = ScenarioResult(
        "demo",
        "demo scenario",
        [Column("msgs_per_s", "msgs/s", "rate"), Column("seconds", "time", "seconds")],
        runs=[
            Run("project", "project", {"msgs_per_s": 900.0, "seconds": 5.5}),
            Run("ref", "reference", {"msgs_per_s": 1200.0, "seconds": 4.1, "error": "timed out"}),
        ],
        ratios=[Ratio("vs", "project / reference", 0.75, "msgs_per_s", ">= 0.60", True, minimum=0.6)],
        notes=["a note"],
        seconds=12.0,
    )
    console = Console(width=160, record=True, color_system=None)
    console.print(scenario_table(result))
    text = console.export_text()
    assert "demo scenario" in text and "900" in text and "1,200" in text and "5.50 s" in text
    assert "0.75x" in text and ">= 0.60" in text and "met" in text
    assert "reference: timed out" in text and "a note" in text
    assert result.as_json()["ratios"]["vs"] == {
        "label": "project / reference",
        "value": 0.75,
        "target": ">= 0.60",
        "minimum": 0.6,
        "maximum": None,
        "met": True,
    }
    assert result.missed_targets() == []


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [
        (None, "rate", "-"),
        (18.456, "rate", "18.5"),
        (1482.3, "rate", "1,482"),
        (0.4312, "ratio", "0.43x"),
        (34.07, "ratio", "34.07x"),
        (412.4, "ratio", "412x"),
        (2.0, "ms", "2.00 ms"),
        (22.08, "percent", "22%"),
        (5000, "int", "5,000"),
        (True, "text", "yes"),
    ],
)
def test_format_value(value: object, kind: str, shown: str) -> None:
    assert format_value(value, kind) == shown  # type: ignore[arg-type]
