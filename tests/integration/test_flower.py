"""Flower watching a real worker: producer → Redis → worker (task events) → Flower's HTTP API.

A real Flower process (``celery -A wadispatch.celery flower``, basic auth from ``FLOWER_BASIC_AUTH``) on a
free loopback port reads the worker's task events; the tests read tasks back from its HTTP API and
its Prometheus endpoint. Flower's view does not depend on the ledger's database, so these tests use
SQLite only.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from wadispatch import enqueue
from wadispatch.celery import SEND_TASK
from wadispatch.ledger import Ledger
from wadispatch.localstack import WorkerProcess, stop_process_group
from wadispatch.states import State

from tests.support import button_request, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "flower-user", "flower-pass-4c1e"
AUTH = (USER, PASSWORD)
PHONE = "+255712345678"
PHONE_DIGITS = "712345678"  # any rendering of the number (E.164, digits, masked tail) contains these
#: What Flower shows as the send task's result (the repr of its return value) for a message sent:
#: the state the attempt left it in, or the attempt's summary in the batch engine's words.
SENT_RESULTS = (repr("sent"), repr("sent 1"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FlowerProcess:
    """One Flower process on a free loopback port, in its own process group, its log in a file."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path, port: int) -> None:
        self.command = command
        # Only this test's FLOWER_* settings: an inherited FLOWER_UNAUTHENTICATED_API would open the API.
        base = {key: value for key, value in os.environ.items() if not key.startswith("FLOWER_")}
        self.env = {**base, **env}
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 30.0) -> FlowerProcess:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flower exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthcheck", timeout=1).text == "OK":
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"flower not answering after {ready_timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Flower exits cleanly on it), then SIGKILL what is left after ``timeout``."""
        if self.process is not None:
            stop_process_group(self.process, timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def flower_env(redis_url: str, queue: str) -> dict[str, str]:
    return {
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": queue,
        "FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}",
    }


@pytest.fixture(scope="module")
def flower(redis_url: str, queue_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``celery -A wadispatch.celery flower`` on a free loopback port; yields its base URL."""
    port = free_port()
    process = FlowerProcess(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "wadispatch",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
        ],
        flower_env(redis_url, queue_name),
        tmp_path_factory.mktemp("flower") / "flower.log",
        port,
    )
    process.start()
    try:
        yield process.url
    finally:
        process.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only (overrides the root fixture): Flower shows the same whatever the ledger is."""
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


@pytest.fixture
def worker(flower: str, database_url: str, producer_app, start_worker) -> WorkerProcess:
    """A real worker, started once Flower listens, returned once Flower has its heartbeat."""
    started = start_worker(database_url)
    wait_for(lambda: worker_online(flower, started), timeout=30, interval=0.25)
    return started


def metric_samples(flower: str) -> list[Sample]:
    """Every sample of Flower's Prometheus endpoint, parsed."""
    text = httpx.get(f"{flower}/metrics", timeout=5).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def of_worker(sample: Sample, worker: WorkerProcess) -> bool:
    return sample.labels.get("worker", "").startswith(f"{worker.name}@")


def worker_online(flower: str, worker: WorkerProcess) -> bool:
    """Flower has received this worker's events (its heartbeat sets ``flower_worker_online`` to 1)."""
    return any(
        sample.name == "flower_worker_online" and of_worker(sample, worker) and sample.value == 1
        for sample in metric_samples(flower)
    )


def send_task_events(samples: list[Sample], event: str, worker: WorkerProcess | None = None) -> float:
    """``flower_events_total`` of the send task for one event type (and one worker)."""
    return sum(
        sample.value
        for sample in samples
        if sample.name == "flower_events_total"
        and sample.labels.get("task") == SEND_TASK
        and sample.labels.get("type") == event
        and (worker is None or of_worker(sample, worker))
    )


def tasks_for(flower: str, message_id: str) -> dict[str, dict[str, Any]]:
    """Flower's tasks whose arguments name this message id, by task id."""
    answer = httpx.get(f"{flower}/api/tasks", params={"taskname": SEND_TASK}, auth=AUTH, timeout=5)
    answer.raise_for_status()
    return {task_id: task for task_id, task in answer.json().items() if message_id in (task["args"] or "")}


def task_info(flower: str, task_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{flower}/api/task/info/{task_id}", auth=AUTH, timeout=5)
    answer.raise_for_status()
    return answer.json()


def settled_in_flower(flower: str, message_id: str) -> tuple[str, dict[str, Any]] | None:
    """The (task id, info) of the message's one task once Flower has seen it succeed, else None."""
    found = tasks_for(flower, message_id)
    if len(found) != 1:
        return None
    task_id, task = next(iter(found.items()))
    return (task_id, task_info(flower, task_id)) if task["state"] == "SUCCESS" else None


def shown_args(info: dict[str, Any]) -> list[Any]:
    """The task's arguments as Flower shows them (Celery's repr: a list, or a tuple after a retry)."""
    return list(ast.literal_eval(info["args"]))


def sent(ledger: Ledger, message_id: str) -> bool:
    state = ledger.get(message_id).state
    assert state is not State.FAILED, ledger.get(message_id).reason
    return state is State.SENT


def test_flower_shows_the_send_task_by_message_id_only(
    flower: str, worker: WorkerProcess, ledger: Ledger, sim: httpx.Client
) -> None:
    message_id = enqueue(button_request("meta", to=PHONE), ledger=ledger).message_id
    wait_for(lambda: sent(ledger, message_id))

    task_id, info = wait_for(lambda: settled_in_flower(flower, message_id), timeout=15)

    assert info["uuid"] == task_id
    assert info["name"] == SEND_TASK
    assert shown_args(info) == [message_id]
    assert info["kwargs"] == "{}"
    assert info["state"] == "SUCCESS"
    assert info["result"] in SENT_RESULTS
    assert info["worker"].startswith(f"{worker.name}@")
    assert info["retries"] == 0
    assert info["exception"] is None
    # No rendering of the recipient's number anywhere in what Flower holds for the task.
    assert PHONE_DIGITS not in json.dumps(info)


def test_flower_shows_a_retry_with_its_reason(
    flower: str, worker: WorkerProcess, ledger: Ledger, sim: httpx.Client
) -> None:
    sim.post(
        "/_sim/script", json={"provider": "briq", "answers": [{"kind": "rate_limited", "retry_after": 1}]}
    ).raise_for_status()
    message_id = enqueue(button_request("briq", to=PHONE), ledger=ledger).message_id
    wait_for(lambda: sent(ledger, message_id))
    assert ledger.get(message_id).attempts == 2

    # A retry is the same task id published again: Flower keeps one task that went RETRY → SUCCESS.
    _, info = wait_for(lambda: settled_in_flower(flower, message_id), timeout=15)

    assert info["name"] == SEND_TASK
    assert shown_args(info) == [message_id]
    assert info["result"] in SENT_RESULTS
    assert info["retries"] == 1
    assert info["retried"] is not None and info["retried"] <= info["succeeded"]
    # The task-retried event carries the attempt's reason on one line, and no traceback: a
    # deferral is the job working as designed, not an error.
    reason = re.fullmatch(
        r"SendDeferred: retry: rate_limited, HTTP 429, code RATE_LIMITED, retry in (\d+\.\d)s",
        info["exception"] or "",
    )
    assert reason is not None, info["exception"]
    assert 1.0 <= float(reason.group(1)) <= 2.1  # Briq's Retry-After of 1 s plus up to 1 s of jitter
    assert not info["traceback"], info["traceback"]
    assert PHONE_DIGITS not in json.dumps(info)

    assert send_task_events(metric_samples(flower), "task-retried", worker) == 1


def test_flower_api_needs_the_basic_auth_credentials(flower: str) -> None:
    assert httpx.get(f"{flower}/api/tasks", timeout=5).status_code == 401
    assert httpx.get(f"{flower}/api/tasks", auth=(USER, "wrong"), timeout=5).status_code == 401
    assert httpx.get(f"{flower}/api/task/info/any-id", timeout=5).status_code == 401
    assert httpx.get(f"{flower}/api/tasks", auth=AUTH, timeout=5).status_code == 200
    # Flower serves these two without a login (docker-compose's healthcheck relies on the first).
    assert httpx.get(f"{flower}/healthcheck", timeout=5).text == "OK"
    assert httpx.get(f"{flower}/metrics", timeout=5).status_code == 200


def test_flower_serves_prometheus_metrics_of_the_send_task(
    flower: str, worker: WorkerProcess, ledger: Ledger, sim: httpx.Client
) -> None:
    message_id = enqueue(button_request("meta"), ledger=ledger).message_id
    wait_for(lambda: sent(ledger, message_id))
    wait_for(lambda: settled_in_flower(flower, message_id), timeout=15)

    answer = httpx.get(f"{flower}/metrics", timeout=5)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert "# TYPE flower_events_total counter" in text
    assert "# TYPE flower_task_runtime_seconds histogram" in text
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    for event in ("task-received", "task-started", "task-succeeded"):
        assert send_task_events(samples, event, worker) >= 1, event
    runtimes = [
        sample
        for sample in samples
        if sample.name == "flower_task_runtime_seconds_count" and sample.labels.get("task") == SEND_TASK
    ]
    assert runtimes and sum(sample.value for sample in runtimes) >= 1


def test_wadispatch_flower_starts_flower_with_basic_auth_from_the_environment(
    redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    """The command docker-compose runs: ``wadispatch flower --address=... --port=...``."""
    port = free_port()
    process = FlowerProcess(
        [sys.executable, "-m", "wadispatch.cli", "flower", "--address=127.0.0.1", f"--port={port}"],
        flower_env(redis_url, queue_name),
        tmp_path / "flower.log",
        port,
    )
    process.start()
    try:
        assert httpx.get(f"{process.url}/api/workers", timeout=5).status_code == 401
        assert httpx.get(f"{process.url}/api/task/types", auth=AUTH, timeout=5).status_code == 200
    finally:
        process.stop()
    assert process.process is not None and process.process.returncode is not None
