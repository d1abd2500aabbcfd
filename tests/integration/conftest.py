"""Real parts for integration tests: Redis (REDIS_URL or an embedded Valkey), the simulator, workers."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wadispatch.api import create_app
from wadispatch.api.auth import create_api_key
from wadispatch.celery import app as celery_app
from wadispatch.celery import point_app_at
from wadispatch.ledger import Ledger
from wadispatch.localstack import EmbeddedRedis, WorkerProcess
from wadispatch.simulator import SimulatorConfig, SimulatorServer
from wadispatch.window import RedisWindows

from tests.api_support import WEBHOOK_SECRETS, Api, ApiServer
from tests.support import SECRETS, make_settings


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``REDIS_URL`` when set, else a private Valkey server for this test session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture(scope="session")
def queue_name() -> str:
    """A queue of this session's own, so a shared Redis never mixes two runs' jobs."""
    return f"wadispatch-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def producer_app(redis_url: str, queue_name: str):
    """The Celery app of this (producer) process, pointed at the test Redis and queue."""
    point_app_at(redis_url, queue_name)
    yield celery_app
    point_app_at(redis_url, queue_name)  # closes this session's connections
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(queue_name)
    client.close()


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    """The provider simulator on loopback: no latency, no limits, no failures unless scripted."""
    server = SimulatorServer(
        SimulatorConfig(latency="fixed", latency_ms=0, sender_limit=None, callbacks=False)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sim(simulator: SimulatorServer) -> Iterator[httpx.Client]:
    """A client for the simulator's control endpoints, reset before each test."""
    with httpx.Client(base_url=simulator.url, timeout=10) as client:
        client.post("/_sim/reset").raise_for_status()
        yield client


def worker_env(redis_url: str, database_url: str, queue: str, simulator: SimulatorServer) -> dict[str, str]:
    return {
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_DATABASE_URL": database_url,
        "WADISPATCH_QUEUE": queue,
        "WADISPATCH_BACKOFF_BASE_SECONDS": "0.2",
        "WADISPATCH_BACKOFF_CAP_SECONDS": "2",
        "WADISPATCH_HTTP_READ_TIMEOUT": "3",
        **simulator.base_urls(),
        **SECRETS,
    }


@pytest.fixture
def start_worker(tmp_path: Path, redis_url: str, queue_name: str, simulator: SimulatorServer):
    """Start real worker processes on a database URL (``supervised``: through ``wadispatch worker``);
    all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(
        database_url: str, *, name: str = "w1", concurrency: int = 8, supervised: bool = False, **env: str
    ) -> WorkerProcess:
        worker = WorkerProcess(
            {**worker_env(redis_url, database_url, queue_name, simulator), **env},
            name=f"{name}-{uuid.uuid4().hex[:6]}",
            concurrency=concurrency,
            queue=queue_name,
            log_dir=tmp_path,
            supervised=supervised,
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


# --- The HTTP API on loopback ----------------------------------------------------------


@pytest.fixture
def api(ledger: Ledger, database_url: str, redis_url: str, queue_name: str, producer_app) -> Iterator[Api]:
    run = uuid.uuid4().hex[:8]
    settings = make_settings(
        database_url=database_url,
        redis_url=redis_url,
        window_prefix=f"wadispatch-test:win:{run}",
        event_tasks={
            "reply": "helpdesk.on_reply",
            "status": "helpdesk.on_status",
            "window_closed": "helpdesk.reengage",
        },
        event_queue=f"{queue_name}-events-{run}",
        api_max_body_bytes=4096,
        api_max_upload_bytes=65_536,
        meta_verify_token="verify-me",
        **WEBHOOK_SECRETS,
    )
    windows = RedisWindows.from_url(redis_url, settings)
    server = ApiServer(create_app(settings, ledger=ledger, windows=windows)).start()
    _, key = create_api_key(ledger, "tests")
    worker_env = {
        "WADISPATCH_WINDOW_PREFIX": settings.window_prefix,
        "WADISPATCH_EVENT_TASKS": json.dumps(settings.event_tasks),
        "WADISPATCH_EVENT_QUEUE": settings.event_queue,
    }
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=15) as client:
            yield Api(server.url, client, key, ledger, windows, settings, worker_env)
    finally:
        server.stop()
        windows.redis.delete(settings.event_queue)
        windows.redis.close()
