"""The naive reference: a minimal Celery app with one task per message doing a sync ``httpx.post``.

This is what a first Celery sender looks like, and what wadispatch is measured against. Its worker
is started as ``python -m celery -A tests.bench.naive worker --pool prefork -c 2`` (Celery's
default pool) with the broker and queue taken from the environment:

``WADISPATCH_BENCH_BROKER_URL``
    the broker (default ``redis://127.0.0.1:6379/0``);
``WADISPATCH_BENCH_NAIVE_QUEUE``
    the queue its tasks go to and its worker consumes (default ``naive``);
``WADISPATCH_BENCH_NAIVE_CLIENT``
    ``shared`` (default): each worker process posts through one ``httpx.Client`` of its own, kept
    alive; ``post``: a bare ``httpx.post()`` per message, which builds a client and an SSL context
    every time (about 30 ms of CPU per message on a 2-core machine: it halves the reference).

The producer side (the benchmark process) calls :func:`point_at` instead. Nothing here imports
wadispatch: it is Celery's own behaviour that is measured.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from celery import Celery

BROKER_ENV = "WADISPATCH_BENCH_BROKER_URL"
QUEUE_ENV = "WADISPATCH_BENCH_NAIVE_QUEUE"
CLIENT_ENV = "WADISPATCH_BENCH_NAIVE_CLIENT"
CLIENT_MODES = ("shared", "post")
LIMITED_RATE = "50/s"
"""Celery's own ``rate_limit`` of :func:`send_limited` (the ``precision`` scenario's reference)."""

app = Celery("naive", broker=os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=os.environ.get(QUEUE_ENV, "naive"),
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


_clients: dict[int, httpx.Client] = {}


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    if os.environ.get(CLIENT_ENV, "shared") == "post":
        return httpx.post(url, json=body, headers=headers, timeout=15.0).status_code
    client = _clients.get(os.getpid())
    if client is None:  # one per process: a prefork child must not use its parent's sockets
        client = _clients[os.getpid()] = httpx.Client(timeout=15.0)
    return client.post(url, json=body, headers=headers).status_code


@app.task(name="naive.send")
def send(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    """POST one message to the provider; return its HTTP status (no retry, no record)."""
    return _post(url, body, headers)


@app.task(name="naive.send_limited", rate_limit=LIMITED_RATE)
def send_limited(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    """:func:`send` under Celery's built-in ``rate_limit`` (per worker instance)."""
    return _post(url, body, headers)


def point_at(broker_url: str, queue: str) -> None:
    """Aim this process's producer at ``broker_url`` and ``queue`` (the benchmark process)."""
    app.conf.update(broker_url=broker_url, task_default_queue=queue)
    app._after_fork()  # Celery's reset of its connection and producer pools


def worker_env(broker_url: str, queue: str, client: str = "shared") -> dict[str, str]:
    """The environment a naive worker needs to consume ``queue`` on ``broker_url``."""
    return {BROKER_ENV: broker_url, QUEUE_ENV: queue, CLIENT_ENV: client}
