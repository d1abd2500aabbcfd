"""Smoke tests of the benchmark harness: ``python -m tests.bench SCENARIO --quick --json PATH``.

Each runs the real command (its own Redis or ``REDIS_URL``, the simulator in its own process, real
workers) with small counts, checks the JSON holds the figures and the ratios, and that nothing it
started is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def bench(tmp_path: Path, *args: str, timeout: float = 150.0) -> tuple[subprocess.CompletedProcess[str], Any]:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench", *args, "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert out.exists(), done.stdout + done.stderr
    data = json.loads(out.read_text())
    assert not processes_mentioning(data["setup"]["workdir"]), "the benchmark left processes running"
    assert not Path(data["setup"]["workdir"]).exists() or done.returncode != 0
    return done, data


def processes_mentioning(workdir: str) -> list[int]:
    """Processes of a run: its work directory in their command line (the simulator) or among their
    open files (every worker's output goes to a log there, inherited by its pool's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if workdir.encode() in (entry / "cmdline").read_bytes() or any(
                os.readlink(fd).startswith(workdir) for fd in (entry / "fd").iterdir()
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def worker_ready(workdir: Path) -> bool:
    """A project worker of the run consumes (its log, in the work directory, says so)."""
    for log in workdir.glob("throughput-*.log"):
        try:
            if b" ready." in log.read_bytes():
                return True
        except OSError:
            continue
    return False


@pytest.mark.timeout(180)
def test_enqueue_quick_writes_every_figure_and_ratio(tmp_path: Path) -> None:
    done, data = bench(tmp_path, "enqueue")
    assert done.returncode == 0, done.stdout + done.stderr
    assert data["quick"] is True and data["interrupted"] is False
    assert list(data["scenarios"]) == ["enqueue"]
    scenario = data["scenarios"]["enqueue"]
    assert scenario["error"] is None
    count = data["sizes"]["enqueue"]
    assert set(scenario["runs"]) == {"enqueue_one", "enqueue_many", "naive_delay"}
    for run in scenario["runs"].values():
        assert run["messages"] == run["published"] == count
        assert run["seconds"] > 0 and run["msgs_per_s"] > 0
    ratios = scenario["ratios"]
    assert set(ratios) == {"one_vs_delay", "many_vs_delay"}
    one = scenario["runs"]["enqueue_one"]["msgs_per_s"] / scenario["runs"]["naive_delay"]["msgs_per_s"]
    assert ratios["one_vs_delay"]["value"] == pytest.approx(one)
    assert "enqueue() / .delay()" in done.stdout and "msgs/s" in done.stdout


@pytest.mark.timeout(240)
def test_throughput_quick_runs_the_project_and_both_references(tmp_path: Path) -> None:
    done, data = bench(tmp_path, "throughput")
    scenario = data["scenarios"]["throughput"]
    assert scenario["error"] is None, scenario["error"]
    runs = scenario["runs"]
    assert set(runs) == {"project_1w", "project_2w", "loop", "naive"}
    sizes = data["sizes"]
    for key in ("project_1w", "project_2w"):
        project = runs[key]
        assert project["complete"], project["error"]
        assert project["sent"] == project["sim_accepted"] == sizes["throughput"]  # sent once each
        assert project["transitions_complete"] == sizes["throughput"]
        assert project["msgs_per_s"] > 0
    assert runs["loop"]["complete"] and runs["loop"]["ok"] == sizes["throughput"]
    assert runs["naive"]["complete"] and runs["naive"]["sim_accepted"] == sizes["throughput_naive"]
    ratios = scenario["ratios"]
    assert set(ratios) == {"1w_vs_loop", "1w_vs_naive", "2w_vs_loop", "2w_vs_naive", "2w_box_cpu_vs_loop"}
    assert ratios["2w_vs_loop"]["minimum"] == 0.75 and ratios["2w_vs_naive"]["minimum"] == 25
    assert ratios["2w_box_cpu_vs_loop"]["maximum"] == 1.6
    assert ratios["1w_vs_loop"]["minimum"] is None  # the target is the two workers'
    for key, value in ratios.items():
        assert value["value"] > 0, key
        assert value["met"] in ((True, False) if value["target"] else (None,)), key
    assert runs["project_2w"]["box_cpu_ms_per_msg"] > 0 and runs["loop"]["box_cpu_ms_per_msg"] > 0
    assert done.returncode == 0, done.stdout + done.stderr  # missed targets only warn without --strict


@pytest.mark.timeout(300)
def test_paced_quick_measures_every_sender_against_its_limit(tmp_path: Path) -> None:
    done, data = bench(tmp_path, "paced", timeout=280)
    scenario = data["scenarios"]["paced"]
    assert scenario["error"] is None, scenario["error"]
    runs, sizes = scenario["runs"], data["sizes"]
    assert set(runs) == {"paced", "unpaced", "paced_one"}
    for key, messages, senders in (
        ("paced", sizes["paced"], sizes["paced_senders"]),
        ("unpaced", sizes["paced"], sizes["paced_senders"]),
        ("paced_one", sizes["paced_one"], 1),
    ):
        run = runs[key]
        assert run["complete"], run["error"]
        assert run["sent"] == run["sim_accepted"] == messages, key  # each sent once
        assert len(run["per_sender"]) == senders, key
        assert sum(entry["accepted"] for entry in run["per_sender"].values()) == messages
        assert run["slowest_sender_rate"] == min(entry["rate"] for entry in run["per_sender"].values())
    ratios = scenario["ratios"]
    assert ratios["slowest_sender_vs_limit"]["minimum"] == 0.95
    assert ratios["one_sender_vs_limit"]["minimum"] == 0.97
    assert ratios["one_max_in_1s"]["maximum"] == sizes["paced_one_rate"]
    for key, value in ratios.items():
        assert value["met"] in (True, False), key
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(120)
def test_sigterm_stops_everything_it_started(tmp_path: Path) -> None:
    process = subprocess.Popen(
        # Full size: the run is stopped long before its end, however fast the machine.
        [sys.executable, "-m", "tests.bench", "throughput"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert process.stdout is not None
    workdir = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not workdir:
        line = process.stdout.readline()
        if "work directory: " in line:
            workdir = line.split("work directory: ", 1)[1].strip()
    assert workdir, "the benchmark did not announce its work directory"
    while time.monotonic() < deadline and not worker_ready(Path(workdir)):
        time.sleep(0.1)
    assert worker_ready(Path(workdir)) and process.poll() is None
    assert len(processes_mentioning(workdir)) >= 2  # the simulator and a worker
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=45) == 130
    assert not processes_mentioning(workdir)
    assert not Path(workdir).exists()


@pytest.mark.timeout(180)
def test_campaign_quick_accepts_every_row_and_queues_every_job(tmp_path: Path) -> None:
    done, data = bench(tmp_path, "campaign")
    assert done.returncode == 0, done.stdout + done.stderr
    scenario = data["scenarios"]["campaign"]
    assert scenario["error"] is None, scenario["error"]
    sizes = data["sizes"]
    runs = scenario["runs"]
    assert set(runs) == {"project", "naive_delay", "memory"}
    assert runs["project"]["accepted"] == runs["project"]["queued"] == sizes["campaign"]
    assert runs["memory"]["accepted"] == sizes["campaign_memory"]
    assert runs["naive_delay"]["accepted"] == sizes["campaign_naive"]
    for run in runs.values():
        assert run["check"] == f"{run['jobs']:,}/{run['jobs']:,} jobs in Redis"
        assert run["per_s"] > 0 and run["peak_rss_mb"] > 0
    ratios = scenario["ratios"]
    assert set(ratios) == {"project_vs_naive", "project_rate", "memory_rss"}
    expected = runs["project"]["per_s"] / runs["naive_delay"]["per_s"]
    assert ratios["project_vs_naive"]["value"] == pytest.approx(expected)
    assert "recipients/s" in done.stdout


@pytest.mark.timeout(180)
def test_reconcile_quick_times_a_run_and_its_database_time_per_10000_rows(tmp_path: Path) -> None:
    done, data = bench(tmp_path, "reconcile")
    assert done.returncode == 0, done.stdout + done.stderr
    scenario = data["scenarios"]["reconcile"]
    assert scenario["error"] is None, scenario["error"]
    sizes = data["sizes"]
    [sqlite] = scenario["runs"].values()  # PostgreSQL only with --database-url
    assert "error" not in sqlite, sqlite["check"]
    assert sqlite["rows"] == sizes["reconcile"] + sizes["reconcile_stuck"]
    assert 0 < sqlite["db_s"] <= sqlite["full_s"] and sqlite["per_10k_s"] > 0
    assert set(scenario["ratios"]) == {"sqlite_per_10k"}  # a figure, not a timed test: met or not
    assert "db per 10,000" in done.stdout
