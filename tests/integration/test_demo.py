"""``wadispatch demo`` end to end: it finishes, its counts add up, and nothing keeps running."""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration

WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))
#: Runs a command with Ctrl-C's default disposition, as a terminal starts it: a test run launched
#: in the background (``make test &``) ignores SIGINT, and a child would inherit that.
AS_FROM_A_TERMINAL = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


def demo_processes() -> set[int]:
    """Workers and Flower a demo started (their environment names a demo queue)."""
    found: set[int] = set()
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("WADISPATCH_QUEUE", "").startswith("wadispatch-demo-"):
                found.add(process.info["pid"])
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def assert_nothing_left(output: str, before: set[int]) -> None:
    """No worker or Flower of the demo's, and nothing listening where its Valkey was."""
    time.sleep(0.5)
    assert demo_processes() - before == set()
    port = re.search(r"private Valkey at redis://127\.0\.0\.1:(\d+)", output)
    assert port, output[:2000]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(port.group(1))), timeout=2).close()


def summary_rows(output: str) -> dict[str, str]:
    """The two-column rows of the printed summary table: {"sent": "45", ...}."""
    rows: dict[str, str] = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 4 and cells[0] == cells[3] == "":
            rows[cells[1]] = cells[2].split()[0]
    return rows


def demo_env() -> dict[str, str]:
    """The environment of a newcomer: no Redis URL, no wadispatch settings."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("WADISPATCH_") and key != "REDIS_URL"
    }


def test_demo_sends_everything_and_leaves_nothing_behind(tmp_path: Path) -> None:
    before = demo_processes()
    out = tmp_path / "outcomes.csv"
    result = subprocess.run(
        [WADISPATCH, "demo", "--messages", "150", "--latency-ms", "20", "--out", str(out), "--timeout", "90"],
        env=demo_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 150
    assert {row["state"] for row in rows} <= {"sent", "failed"}
    summary = summary_rows(result.stdout)
    assert int(summary["messages"]) == 150
    assert int(summary["sent"]) == sum(row["state"] == "sent" for row in rows)
    failed = {
        key.removeprefix("failed: "): int(value) for key, value in summary.items() if key.startswith("failed")
    }
    assert sum(failed.values()) + int(summary["sent"]) == 150
    for reason, count in failed.items():
        assert count == sum(row["reason"] == reason for row in rows)
    assert {row["provider"] for row in rows} == {"briq", "bird", "zixflow", "wacr", "meta"}
    assert all(row["reason"] for row in rows if row["state"] == "failed")
    assert_nothing_left(result.stdout, before)


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    before = demo_processes()
    out = str(tmp_path / "o.csv")
    process = subprocess.Popen(
        [
            *AS_FROM_A_TERMINAL,
            WADISPATCH,
            "demo",
            *("--messages", "5000", "--latency-ms", "200"),
            "--out",
            out,
        ],
        env=demo_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        seen = ""
        for line in process.stdout:  # wait until the worker is up and sending
            seen += line
            if line.startswith("worker:") or time.monotonic() > deadline:
                break
        time.sleep(2)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        output = seen + rest
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output[-2000:]
    assert "interrupted" in output
    assert "could not publish" not in output  # the producer stopped before Redis did
    assert_nothing_left(output, before)
