"""The project's side of a scenario: ``enqueue_many`` here, real workers there, the ledger watched.

A run is timed from the first enqueue to the moment the ledger shows every message settled
(polled every 50 ms), then the ledger and the simulator are read for the figures.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from wadispatch import enqueue_many
from wadispatch.celery import point_app_at
from wadispatch.ledger import Ledger, messages, transitions
from wadispatch.localstack import WorkerProcess
from wadispatch.states import SETTLED

from tests.bench.figures import (
    box_cpu_seconds,
    cpu_seconds,
    max_in_window,
    median,
    observed_rate,
    percentile,
    rate,
)
from tests.bench.stack import Stack, first_error, worker_trouble

POLL_SECONDS = 0.05
TROUBLE_CHECK_SECONDS = 2.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProjectRun:
    """One run of the project: what to send, through how many workers, at which default rate."""

    label: str
    requests: list[dict[str, Any]]
    workers: int
    pool: str
    concurrency: int
    default_rate: int | None = None
    """``WADISPATCH_DEFAULT_RATE`` (per sender, messages/s); None leaves the project's default."""


def run_project(stack: Stack, spec: ProjectRun, progress: Progress) -> dict[str, Any]:
    """Send ``spec.requests`` through fresh workers, ledger and queue; return the run's figures.

    The simulator is not reset here: the caller configures and resets it first.
    """
    total = len(spec.requests)
    queue = stack.queue(spec.label)
    with stack.database(spec.label) as (database_url, ledger), ExitStack() as run:  # workers stop first
        point_app_at(stack.redis_url, queue)
        env = stack.project_env(database_url, queue, default_rate=spec.default_rate)
        progress(f"{spec.label}: starting {spec.workers} worker(s)")
        workers = stack.start_workers(
            run,
            env,
            queue,
            count=spec.workers,
            label=spec.label,
            pool=spec.pool,
            concurrency=spec.concurrency,
        )
        cpu_before, box_before = _cpu(workers), box_cpu_seconds()
        sim_cpu_before = cpu_seconds(stack.sim.pid) if stack.sim.pid else None
        started = time.perf_counter()
        results = enqueue_many(spec.requests, ledger=ledger)
        enqueue_seconds = time.perf_counter() - started
        settled, counts, trouble = _wait_settled(ledger, workers, total, started, stack, spec.label, progress)
        elapsed = time.perf_counter() - started
        worker_cpu = _delta(_cpu(workers), cpu_before)
        box_cpu = _delta(box_cpu_seconds(), box_before)
        sim_cpu = _delta(cpu_seconds(stack.sim.pid) if stack.sim.pid else None, sim_cpu_before)
        figures: dict[str, Any] = {
            "messages": total,
            "published": sum(result.published for result in results),
            "settled": settled,
            "complete": settled >= total,
            "states": counts,
            "sent": counts.get("sent", 0),
            "failed": counts.get("failed", 0),
            "seconds": round(elapsed, 3),
            "enqueue_seconds": round(enqueue_seconds, 3),
            "msgs_per_s": rate(settled, elapsed),
            "worker_cpu_ms_per_msg": _per_message_ms(worker_cpu, settled),
            "box_cpu_ms_per_msg": _per_message_ms(box_cpu, settled),
            "simulator_cpu_percent": _percent(sim_cpu, elapsed),
            "workers": spec.workers,
            "pool": spec.pool,
            "concurrency": spec.concurrency,
            "default_rate": spec.default_rate,
            "error": trouble,
        }
        figures.update(ledger_figures(ledger))
        figures.update(simulator_figures(stack.sim.stats(log=True)))
        for worker in workers:
            worker.stop(10.0)
        stack.purge(queue)
    return figures


def _wait_settled(
    ledger: Ledger,
    workers: list[WorkerProcess],
    total: int,
    started: float,
    stack: Stack,
    label: str,
    progress: Progress,
) -> tuple[int, dict[str, int], str | None]:
    options = stack.options
    deadline = started + options.timeout
    last_settled, last_change, last_check = -1, time.perf_counter(), 0.0
    while True:
        counts = ledger.count_by_state()
        settled = sum(counts.get(state, 0) for state in SETTLED)
        now = time.perf_counter()
        if settled >= total:
            return settled, counts, None
        if settled != last_settled:
            last_settled, last_change = settled, now
        elif now - last_change > TROUBLE_CHECK_SECONDS and now - last_check > TROUBLE_CHECK_SECONDS:
            last_check = now
            trouble = worker_trouble(workers)
            if trouble:
                return settled, counts, trouble
        if now - last_change > options.stall_seconds:
            return (
                settled,
                counts,
                _explained(f"no message settled for {options.stall_seconds:.0f}s", counts, workers),
            )
        if now > deadline:
            return settled, counts, _explained(f"not settled after {options.timeout:.0f}s", counts, workers)
        progress(f"{label}: {settled}/{total} settled after {now - started:.1f}s")
        time.sleep(POLL_SECONDS)


def _explained(problem: str, counts: dict[str, int], workers: list[WorkerProcess]) -> str:
    error = first_error(workers)
    return f"{problem} ({counts})" + (f"; first task error: {error}" if error else "")


def ledger_figures(ledger: Ledger) -> dict[str, Any]:
    """Attempts per message, and whether every sent message has pending, sending and sent recorded."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(messages.c.id, messages.c.state, messages.c.attempts)).all()
        steps = conn.execute(select(transitions.c.message_id, transitions.c.to_state)).all()
    recorded: defaultdict[str, set[str]] = defaultdict(set)
    for message_id, to_state in steps:
        recorded[message_id].add(to_state)
    sent = [row for row in rows if row.state == "sent"]
    attempts = [row.attempts for row in rows]
    return {
        "transition_rows": len(steps),
        "transitions_complete": sum(1 for row in sent if {"pending", "sending", "sent"} <= recorded[row.id]),
        "attempts_median": median(attempts),
        "attempts_p99": percentile(attempts, 99),
        "attempts_max": max(attempts, default=None),
    }


def simulator_figures(stats: dict[str, Any]) -> dict[str, Any]:
    """What the simulator saw: requests, accepted sends, 429s, and the rate of accepted sends."""
    log = stats.get("accepted_log", [])
    times = [entry["time"] for entry in log]
    per_sender: defaultdict[str, list[float]] = defaultdict(list)
    for entry in log:
        per_sender[entry["sender"]].append(entry["time"])
    answers = stats["answers_total"]
    return {
        "sim_requests": stats["requests_total"],
        "sim_accepted": answers.get("accepted", 0),
        "sim_429s": answers.get("rate_limited", 0),
        "sim_other_refusals": sum(
            count for kind, count in answers.items() if kind not in ("accepted", "rate_limited")
        ),
        "observed_rate": observed_rate(times),
        "max_in_1s": max_in_window(times, 1.0) if times else 0,
        "per_sender": {
            sender: {"accepted": len(seen), "rate": observed_rate(seen), "max_in_1s": max_in_window(seen)}
            for sender, seen in sorted(per_sender.items())
        },
    }


def _cpu(workers: list[WorkerProcess]) -> float | None:
    values = [cpu_seconds(worker.process.pid) for worker in workers if worker.process is not None]
    if not values or any(value is None for value in values):
        return None
    return sum(value for value in values if value is not None)


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _per_message_ms(cpu: float | None, count: int) -> float | None:
    return None if cpu is None or not count else cpu * 1000 / count


def _percent(cpu: float | None, elapsed: float) -> float | None:
    return None if cpu is None or elapsed <= 0 else cpu * 100 / elapsed
