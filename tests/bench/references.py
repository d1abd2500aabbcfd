"""The references: a bare aiohttp loop (the machine's limit) and naive Celery tasks.

Both send exactly the HTTP requests the project's Meta adapter builds
(:func:`tests.bench.workload.provider_requests`) to the same simulator.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from contextlib import ExitStack
from typing import Any

import aiohttp
from celery import Task
from wadispatch.localstack import WorkerProcess

from tests.bench import naive
from tests.bench.figures import box_cpu_seconds, cpu_seconds, rate
from tests.bench.project import Progress, simulator_figures
from tests.bench.stack import Stack
from tests.bench.workload import HttpRequest

POLL_SECONDS = 0.1


def aiohttp_loop(requests: list[HttpRequest], *, in_flight: int, timeout: float) -> dict[str, Any]:
    """Send ``requests`` from one asyncio loop with ``in_flight`` at a time; return its figures.

    One ``aiohttp.ClientSession`` whose connector allows ``in_flight`` connections; ``in_flight``
    coroutines take the next request as soon as theirs is answered. Timed from the first request
    to the last answer read; the CPU is this process's.
    """
    cpu_before, box_before = time.process_time(), box_cpu_seconds()
    elapsed, statuses, finished = asyncio.run(_blast(requests, in_flight, timeout))
    cpu = time.process_time() - cpu_before
    box_after = box_cpu_seconds()
    box = None if box_before is None or box_after is None else box_after - box_before
    answered = sum(count for status, count in statuses.items() if isinstance(status, int))
    return {
        "messages": len(requests),
        "in_flight": in_flight,
        "answered": answered,
        "ok": sum(count for status, count in statuses.items() if isinstance(status, int) and status < 300),
        "statuses": {str(status): count for status, count in statuses.items()},
        "complete": finished and answered == len(requests),
        "seconds": round(elapsed, 3),
        "msgs_per_s": rate(answered, elapsed),
        "cpu_ms_per_msg": cpu * 1000 / answered if answered else None,
        "box_cpu_ms_per_msg": box * 1000 / answered if answered and box is not None else None,
        "error": None if finished else f"not finished after {timeout:.0f}s",
    }


async def _blast(
    requests: list[HttpRequest], in_flight: int, timeout: float
) -> tuple[float, Counter[int | str], bool]:
    statuses: Counter[int | str] = Counter()
    pending = iter(requests)
    connector = aiohttp.TCPConnector(limit=in_flight, limit_per_host=in_flight)
    client_timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def sender() -> None:
            for request in pending:
                try:
                    async with session.post(
                        request.url, json=request.body, headers=request.headers
                    ) as answer:
                        await answer.read()
                        statuses[answer.status] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses[type(exc).__name__] += 1

        started = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(sender() for _ in range(in_flight))), timeout)
        except TimeoutError:
            return time.perf_counter() - started, statuses, False
        return time.perf_counter() - started, statuses, True


def naive_celery(
    stack: Stack,
    requests: list[HttpRequest],
    *,
    task: Task,
    label: str,
    progress: Progress,
    workers: int = 1,
    pool: str = "prefork",
    concurrency: int = 2,
) -> dict[str, Any]:
    """``task.delay(url, body, headers)`` per request, ``workers`` naive workers; return the figures.

    Timed from the first ``.delay()`` to the moment the simulator has received every request
    (its answer follows one latency later: a small advantage to the reference). Bounded by
    ``--reference-timeout``: then ``stopped`` says so and the rates count what was done by then.
    The caller resets the simulator first.
    """
    total = len(requests)
    queue = stack.queue(label)
    timeout = stack.options.reference_timeout
    with ExitStack() as run:
        progress(f"{label}: starting {workers} naive worker(s)")
        started_workers = stack.start_naive_workers(
            run, queue, label=label, count=workers, pool=pool, concurrency=concurrency
        )
        naive.point_at(stack.redis_url, queue)
        cpu_before = _cpu(started_workers)
        started = time.perf_counter()
        for request in requests:
            task.delay(request.url, request.body, request.headers)
        publish_seconds = time.perf_counter() - started
        deadline = started + timeout
        error = stopped = None
        while True:
            received = stack.sim.requests_total()
            now = time.perf_counter()
            if received >= total:
                break
            if now > deadline:  # a bound, not a failure: the rates count what was sent by then
                stopped = f"stopped at {received}/{total} requests after {timeout:.0f}s (--reference-timeout)"
                break
            trouble = _exited(started_workers)
            if trouble:
                error = trouble
                break
            progress(f"{label}: {received}/{total} at the simulator after {now - started:.1f}s")
            time.sleep(POLL_SECONDS)
        elapsed = time.perf_counter() - started
        cpu_after = _cpu(started_workers)
        for worker in started_workers:
            worker.stop(10.0)
    stack.purge(queue)
    figures: dict[str, Any] = {
        "messages": total,
        "task": task.name,
        "workers": workers,
        "pool": pool,
        "concurrency": concurrency,
        "client": stack.options.naive_client,
        "seconds": round(elapsed, 3),
        "publish_seconds": round(publish_seconds, 3),
        "complete": error is None and stopped is None,
        "stopped": stopped,
        "error": error,
    }
    figures.update(simulator_figures(stack.sim.stats(log=True)))
    figures["msgs_per_s"] = rate(figures["sim_requests"], elapsed)
    cpu = None if cpu_after is None or cpu_before is None else cpu_after - cpu_before
    figures["worker_cpu_ms_per_msg"] = (
        cpu * 1000 / figures["sim_requests"] if cpu and figures["sim_requests"] else None
    )
    return figures


def _cpu(workers: list[WorkerProcess]) -> float | None:
    values = [cpu_seconds(worker.process.pid) if worker.process else None for worker in workers]
    return None if any(value is None for value in values) else sum(v for v in values if v is not None)


def _exited(workers: list[WorkerProcess]) -> str | None:
    for worker in workers:
        if worker.process is not None and worker.process.poll() is not None:
            return f"the naive worker {worker.name} exited:\n{worker.log_tail(15)}"
    return None
