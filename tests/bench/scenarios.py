"""The benchmark scenarios: the project and its references side by side, with ratios.

Each scenario takes a :class:`Context` and returns a :class:`~tests.bench.results.ScenarioResult`;
the simulator (one process for the whole run) is reconfigured and reset before each run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wadispatch import enqueue, enqueue_many
from wadispatch.celery import point_app_at

from tests.bench import campaign as campaign_bench
from tests.bench import learn as learn_bench
from tests.bench import naive
from tests.bench import paced as paced_bench
from tests.bench import reconcile as reconcile_bench
from tests.bench.figures import cpu_seconds, rate, ratio
from tests.bench.options import BenchOptions
from tests.bench.project import Progress, ProjectRun, run_project
from tests.bench.references import aiohttp_loop, naive_celery
from tests.bench.results import Column, Ratio, Run, ScenarioResult
from tests.bench.stack import Stack
from tests.bench.workload import meta_requests, provider_requests

LATENCY_MS = 100.0
PRECISION_RATE = 50
STORM_SHARE = 0.3
STORM_RETRY_AFTER = 1.0
UNLIMITED_RATE = 1_000_000
THROUGHPUT_TARGET_VS_LOOP = 0.75
THROUGHPUT_TARGET_VS_LOOP_POSTGRESQL = 0.65
CPU_TARGET_VS_LOOP = 1.6
THROUGHPUT_TARGET_VS_NAIVE = 25.0
PRECISION_TOLERANCE = 0.05
THROUGHPUT_SEED, PRECISION_SEED, STORM_SEED, ENQUEUE_SEED = 4, 7, 11, 23

HEALTHY = {
    "latency": "fixed",
    "latency_ms": LATENCY_MS,
    "sender_limit": 0,
    "pair_limit": 0,
    "error_rate": 0.0,
    "hang_rate": 0.0,
    "drop_rate": 0.0,
    "rate_limited_rate": 0.0,
    "window_closed_share": 0.0,
    "opted_out_share": 0.0,
    "callbacks": False,
}
"""The simulator between scenarios: 100 ms, no limit, no faults, no callbacks."""


@dataclass
class Context:
    """What every scenario needs: the started stack, the options, the project's worker defaults."""

    stack: Stack
    options: BenchOptions
    pool: str
    concurrency: int
    progress: Progress
    batch: int = field(default_factory=lambda: random.randrange(1000) * 1000)
    """The last batch of senders handed out (its thousands differ between invocations)."""

    def requests(self, count: int, senders: int, *, seed: int) -> list[dict[str, Any]]:
        """The messages of one run, from senders no other run used (no inherited limiter state)."""
        self.batch += 1
        return meta_requests(count, senders, seed=seed, batch=self.batch)

    def simulator(self, **changes: Any) -> None:
        """Configure the simulator (healthy defaults plus ``changes``) and reset its counters."""
        self.stack.sim.configure(**{**HEALTHY, **changes})
        self.stack.sim.reset()

    def project(self, label: str, requests: list[dict[str, Any]], workers: int, **kw: Any) -> dict[str, Any]:
        spec = ProjectRun(label, requests, workers, self.pool, self.concurrency, **kw)
        return run_project(self.stack, spec, self.progress)


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


# --- 1. throughput ------------------------------------------------------------------------------------

THROUGHPUT_COLUMNS = [
    Column("messages", "messages", "int"),
    Column("seconds", "time", "seconds"),
    Column("msgs_per_s", "msgs/s", "rate"),
    Column("worker_cpu_ms_per_msg", "CPU/msg", "ms"),
    Column("box_cpu_ms_per_msg", "box CPU/msg", "ms"),
    Column("simulator_cpu_percent", "sim CPU", "percent"),
    Column("ledger", "ledger check", "text"),
]


def throughput(ctx: Context, result: ScenarioResult) -> None:
    """5,000 messages, 100 ms, no limit: the project (1 and 2 workers) against (a) and (b)."""
    sizes = ctx.options.sizes
    result.title = (
        f"throughput: {sizes.throughput} Meta messages over {sizes.throughput_senders} senders, "
        f"{LATENCY_MS:.0f} ms latency, no limit"
    )
    result.columns = THROUGHPUT_COLUMNS
    for workers in (1, 2):
        ctx.simulator()
        requests = ctx.requests(sizes.throughput, sizes.throughput_senders, seed=THROUGHPUT_SEED)
        figures = ctx.project(f"throughput-{workers}w", requests, workers, default_rate=UNLIMITED_RATE)
        figures["ledger"] = _ledger_check(figures)
        label = f"project, {workers} worker{'s' if workers > 1 else ''}"
        result.runs.append(Run(f"project_{workers}w", label, figures))

    ctx.simulator()
    ctx.progress("throughput: (a) the aiohttp loop")
    requests = ctx.requests(sizes.throughput, sizes.throughput_senders, seed=THROUGHPUT_SEED)
    http = provider_requests(requests, ctx.stack.sim.meta_base_url())
    sim_cpu = cpu_seconds(ctx.stack.sim.pid) if ctx.stack.sim.pid else None
    loop = aiohttp_loop(http, in_flight=sizes.throughput_in_flight, timeout=ctx.options.reference_timeout)
    sim_cpu_after = cpu_seconds(ctx.stack.sim.pid) if ctx.stack.sim.pid else None
    if sim_cpu is not None and sim_cpu_after is not None and loop["seconds"]:
        loop["simulator_cpu_percent"] = (sim_cpu_after - sim_cpu) * 100 / loop["seconds"]
    loop["worker_cpu_ms_per_msg"] = loop["cpu_ms_per_msg"]
    loop["ledger"] = "no ledger"
    result.runs.append(Run("loop", f"(a) aiohttp loop, {sizes.throughput_in_flight} in flight", loop))

    ctx.simulator()
    naive_http = http[: sizes.throughput_naive]
    celery = naive_celery(
        ctx.stack,
        naive_http,
        task=naive.send,
        label="throughput-naive",
        progress=ctx.progress,
        pool=ctx.options.naive_pool,
        concurrency=ctx.options.naive_concurrency,
    )
    celery["ledger"] = "no ledger"
    result.runs.append(
        Run("naive", f"(b) naive Celery, {ctx.options.naive_pool} -c {ctx.options.naive_concurrency}", celery)
    )

    target = THROUGHPUT_TARGET_VS_LOOP_POSTGRESQL if ctx.options.database_url else THROUGHPUT_TARGET_VS_LOOP
    two = result.runs[1].figures
    box_versus_loop = ratio(
        two["box_cpu_ms_per_msg"] if two["complete"] else None, loop["box_cpu_ms_per_msg"]
    )
    result.ratios.append(
        Ratio(
            "2w_box_cpu_vs_loop",
            "project, 2 workers: box CPU/msg / (a)",
            box_versus_loop,
            "box_cpu_ms_per_msg",
            f"<= {CPU_TARGET_VS_LOOP:.1f}",
            None if box_versus_loop is None else box_versus_loop <= CPU_TARGET_VS_LOOP,
            maximum=CPU_TARGET_VS_LOOP,
        )
    )
    for run in result.runs[:2]:
        project_rate = run.figures["msgs_per_s"] if run.figures["complete"] else None
        versus_loop = ratio(project_rate, loop["msgs_per_s"])
        binding = run.key == "project_2w"
        versus_naive = ratio(project_rate, celery["msgs_per_s"])
        name = run.key.removeprefix("project_")
        result.ratios += [
            Ratio(
                f"{name}_vs_loop",
                f"{run.label} / (a)",
                versus_loop,
                "msgs_per_s",
                f">= {target:.2f}" if binding else None,
                _at_least(versus_loop, target) if binding else None,
                minimum=target if binding else None,
            ),
            Ratio(
                f"{name}_vs_naive",
                f"{run.label} / (b)",
                versus_naive,
                "msgs_per_s",
                f">= {THROUGHPUT_TARGET_VS_NAIVE:.0f}",
                _at_least(versus_naive, THROUGHPUT_TARGET_VS_NAIVE),
                minimum=THROUGHPUT_TARGET_VS_NAIVE,
            ),
        ]
    result.notes += [
        "project: timed from the first enqueue_many() to the ledger showing every message settled",
        "(a) and (b): the same Meta requests the project's adapter builds, sent straight to the simulator",
        f"(b) timed to its {sizes.throughput_naive}th request reaching the simulator; it posts through "
        + ("one httpx.Client per worker process" if ctx.options.naive_client == "shared" else "httpx.post()"),
        "CPU/msg: the workers' CPU (for (a): the loop's process); box CPU/msg: the whole machine's busy "
        "CPU over the run (workers, Redis, database, simulator, the enqueuing process) per message",
    ]


def _ledger_check(figures: dict[str, Any]) -> str:
    complete, sent = figures["transitions_complete"], figures["sent"]
    text = f"{complete}/{figures['messages']} with pending→sending→sent"
    if figures["failed"]:
        text += f", {figures['failed']} failed"
    if figures["sim_accepted"] != sent:
        text += f", simulator accepted {figures['sim_accepted']} (sent {sent})"
    return text


# --- 2. precision -----------------------------------------------------------------------------------

PRECISION_COLUMNS = [
    Column("messages", "messages", "int"),
    Column("sim_accepted", "accepted", "int"),
    Column("seconds", "time", "seconds"),
    Column("observed_rate", "observed/s", "rate"),
    Column("max_in_1s", "max in 1 s", "int"),
    Column("sim_429s", "429s", "int"),
]


def precision(ctx: Context, result: ScenarioResult) -> None:
    """One sender limited to 50/s by the simulator, two workers: the observed rate and the 429s."""
    sizes = ctx.options.sizes
    result.title = (
        f"precision: one sender limited to {PRECISION_RATE}/s by the simulator, {LATENCY_MS:.0f} ms latency"
    )
    result.columns = PRECISION_COLUMNS
    ctx.simulator(sender_limit=PRECISION_RATE)
    requests = ctx.requests(sizes.precision, 1, seed=PRECISION_SEED)
    figures = ctx.project("precision", requests, 2, default_rate=PRECISION_RATE)
    result.runs.append(Run("project", "project, 2 workers, WADISPATCH_DEFAULT_RATE=50", figures))

    ctx.simulator(sender_limit=PRECISION_RATE)
    naive_requests = ctx.requests(sizes.precision_naive, 1, seed=PRECISION_SEED)
    http = provider_requests(naive_requests, ctx.stack.sim.meta_base_url())
    options = ctx.options
    celery = naive_celery(
        ctx.stack,
        http,
        task=naive.send_limited,
        label="precision-naive",
        progress=ctx.progress,
        workers=options.limited_workers,
        pool=options.limited_pool,
        concurrency=options.limited_concurrency,
    )
    result.runs.append(
        Run(
            "naive",
            f"Celery rate_limit={naive.LIMITED_RATE}, {options.limited_workers} workers, "
            f"{options.limited_pool} -c {options.limited_concurrency}",
            celery,
        )
    )
    low, high = 1 - PRECISION_TOLERANCE, 1 + PRECISION_TOLERANCE
    project_ratio = ratio(figures["observed_rate"], PRECISION_RATE)
    result.ratios += [
        Ratio(
            "project_observed_vs_limit",
            f"project observed / {PRECISION_RATE}",
            project_ratio,
            "observed_rate",
            f"{low:.2f}-{high:.2f}",
            None if project_ratio is None else figures["complete"] and low <= project_ratio <= high,
            minimum=low,
            maximum=high,
        ),
        Ratio(
            "project_429s",
            "project 429s",
            figures["sim_429s"],
            "sim_429s",
            "0",
            figures["sim_429s"] == 0,
            "int",
            maximum=0,
        ),
        Ratio(
            "naive_observed_vs_limit",
            f"Celery rate_limit observed / {PRECISION_RATE}",
            ratio(celery["observed_rate"], PRECISION_RATE),
            "observed_rate",
        ),
        Ratio("naive_429s", "Celery rate_limit 429s", celery["sim_429s"], "sim_429s", format="int"),
    ]
    result.notes += [
        "observed/s: accepted sends at the simulator, (n - 1) / (last - first accepted time)",
        "max in 1 s: the most accepted sends in any 1-second sliding window",
        f"the Celery reference: {options.limited_workers} worker processes (nodes, like the project's), "
        f"{options.limited_pool} pool -c {options.limited_concurrency} each; rate_limit counts per node",
        f"the Celery reference stops at --reference-timeout ({options.reference_timeout:.0f} s) if not done: "
        "its rates count what it sent by then",
    ]


# --- 3. storm ---------------------------------------------------------------------------------------

STORM_COLUMNS = [
    Column("messages", "messages", "int"),
    Column("sent", "sent", "int"),
    Column("failed", "failed", "int"),
    Column("seconds", "time", "seconds"),
    Column("msgs_per_s", "msgs/s", "rate"),
    Column("attempts_median", "attempts p50", "text"),
    Column("attempts_p99", "attempts p99", "text"),
    Column("sim_429s", "429s", "int"),
]


def storm(ctx: Context, result: ScenarioResult) -> None:
    """30% of requests answered 429 with ``Retry-After: 1``, against the storm-free time."""
    sizes = ctx.options.sizes
    result.title = (
        f"storm: {sizes.storm} Meta messages over {sizes.storm_senders} senders, "
        f"{STORM_SHARE:.0%} answered 429 with Retry-After: {STORM_RETRY_AFTER:g}"
    )
    result.columns = STORM_COLUMNS
    ctx.simulator()
    calm = ctx.project("storm-free", ctx.requests(sizes.storm, sizes.storm_senders, seed=STORM_SEED), 2)
    result.runs.append(Run("storm_free", "project, 2 workers, no storm", calm))
    ctx.simulator(rate_limited_rate=STORM_SHARE, rate_limited_retry_after=STORM_RETRY_AFTER)
    stormy = ctx.project("storm", ctx.requests(sizes.storm, sizes.storm_senders, seed=STORM_SEED), 2)
    result.runs.append(Run("storm", f"project, 2 workers, {STORM_SHARE:.0%} 429s", stormy))
    ctx.simulator()

    all_sent = stormy["sent"] == sizes.storm and stormy["failed"] == 0
    result.ratios += [
        Ratio(
            "storm_vs_calm_time",
            "storm time / storm-free time",
            ratio(stormy["seconds"], calm["seconds"]) if stormy["complete"] and calm["complete"] else None,
            "seconds",
        ),
        Ratio(
            "storm_sent",
            "storm: every message sent",
            stormy["sent"],
            "sent",
            str(sizes.storm),
            all_sent,
            "int",
            minimum=sizes.storm,
        ),
        Ratio(
            "storm_failed",
            "storm: none failed",
            stormy["failed"],
            "failed",
            "0",
            stormy["failed"] == 0,
            "int",
            maximum=0,
        ),
    ]
    result.notes += [
        "attempts: the ledger's attempts column over every message (p99: nearest rank)",
        "WADISPATCH_DEFAULT_RATE left at the project's default in both runs",
    ]


# --- 4. enqueue -------------------------------------------------------------------------------------

ENQUEUE_COLUMNS = [
    Column("messages", "messages", "int"),
    Column("seconds", "time", "seconds"),
    Column("msgs_per_s", "msgs/s", "rate"),
    Column("published", "published", "int"),
]


ENQUEUE_TARGET_VS_DELAY = 1.5
"""enqueue() (validated, recorded, published) against a bare .delay() of a task that records nothing."""
ENQUEUE_SLICE = 500
"""enqueue() and .delay() take turns every this many messages (both meet the same load)."""


def enqueue_scenario(ctx: Context, result: ScenarioResult) -> None:
    """Accepting messages with no worker: ``enqueue()`` one by one, ``enqueue_many()``, ``.delay()``."""
    count = ctx.options.sizes.enqueue
    result.title = f"enqueue: accepting {count} messages, no worker"
    result.columns = ENQUEUE_COLUMNS
    requests = ctx.requests(count, 20, seed=ENQUEUE_SEED)
    stack = ctx.stack

    def figures(elapsed: float, published: int) -> dict[str, Any]:
        return {
            "messages": count,
            "seconds": round(elapsed, 3),
            "msgs_per_s": rate(count, elapsed),
            "published": published,
        }

    def one_by_one() -> tuple[dict[str, Any], dict[str, Any]]:
        """enqueue() and .delay() one message at a time, in alternating slices of the same
        messages, so that both meet the same load on a shared machine."""
        queue, naive_queue = stack.queue("enqueue-one"), stack.queue("enqueue-naive")
        spent, published = [0.0, 0.0], [0, 0]
        with stack.database("enqueue-one") as (_, ledger):
            point_app_at(stack.redis_url, queue)
            naive.point_at(stack.redis_url, naive_queue)
            ctx.progress(f"enqueue: enqueue() and .delay() one by one, alternating every {ENQUEUE_SLICE}")
            for start in range(0, count, ENQUEUE_SLICE):
                started = time.perf_counter()
                published[0] += sum(
                    enqueue(item, ledger=ledger).published for item in requests[start : start + ENQUEUE_SLICE]
                )
                spent[0] += time.perf_counter() - started
                started = time.perf_counter()
                for request in http[start : start + ENQUEUE_SLICE]:
                    naive.send.delay(request.url, request.body, request.headers)
                    published[1] += 1
                spent[1] += time.perf_counter() - started
        stack.purge(queue)
        stack.purge(naive_queue)
        return figures(spent[0], published[0]), figures(spent[1], published[1])

    def many() -> dict[str, Any]:
        queue = stack.queue("enqueue-many")
        with stack.database("enqueue-many") as (_, ledger):
            point_app_at(stack.redis_url, queue)
            ctx.progress("enqueue: enqueue_many()")
            started = time.perf_counter()
            published = sum(item.published for item in enqueue_many(requests, ledger=ledger))
            elapsed = time.perf_counter() - started
        stack.purge(queue)
        return figures(elapsed, published)

    http = provider_requests(requests, stack.sim.meta_base_url())
    one, delayed = one_by_one()
    result.runs.append(Run("enqueue_one", "project enqueue() one by one", one))
    batch = many()
    result.runs.append(Run("enqueue_many", "project enqueue_many() in one call", batch))
    result.runs.append(Run("naive_delay", "naive .delay() one by one", delayed))
    one_vs_delay = ratio(one["msgs_per_s"], delayed["msgs_per_s"])
    result.ratios += [
        Ratio(
            "one_vs_delay",
            "enqueue() / .delay()",
            one_vs_delay,
            "msgs_per_s",
            f">= {ENQUEUE_TARGET_VS_DELAY:.1f}",
            _at_least(one_vs_delay, ENQUEUE_TARGET_VS_DELAY),
            minimum=ENQUEUE_TARGET_VS_DELAY,
        ),
        Ratio(
            "many_vs_delay",
            "enqueue_many() / .delay()",
            ratio(batch["msgs_per_s"], delayed["msgs_per_s"]),
            "msgs_per_s",
        ),
    ]
    result.notes += [
        "the project validates, records every message in a fresh ledger and publishes its job (and its "
        "task-sent event)",
        ".delay() carries the whole provider request (URL, body, headers) and records nothing",
        f"enqueue() and .delay() one by one take turns every {ENQUEUE_SLICE} messages, each timed on its own",
    ]


# --- 5. campaign -------------------------------------------------------------------------

CAMPAIGN_RATE_TARGET = 20_000
CAMPAIGN_RSS_TARGET_MB = 150
CAMPAIGN_COLUMNS = [
    Column("rows", "rows", "int"),
    Column("accepted", "accepted", "int"),
    Column("jobs", "jobs queued", "int"),
    Column("seconds", "time", "seconds"),
    Column("per_s", "recipients/s", "rate"),
    Column("peak_rss_mb", "peak RSS MB", "int"),
    Column("check", "check", "text"),
]


def campaign_scenario(ctx: Context, result: ScenarioResult) -> None:
    """Accepting a campaign file: the project against a naive ``.delay()`` loop; a 1M-row memory check."""
    sizes, stack = ctx.options.sizes, ctx.stack
    result.title = (
        f"campaign: accepting {sizes.campaign:,} recipients (ledger + queued), no worker; "
        f"memory for {sizes.campaign_memory:,} rows"
    )
    result.columns = CAMPAIGN_COLUMNS

    def accept(label: str, rows: int, mode: str, limit: int | None = None) -> dict[str, Any]:
        path = stack.workdir / f"{label}.csv"
        ctx.progress(f"campaign: writing {rows:,} rows")
        campaign_bench.generate(path, rows)
        queue = stack.queue(label)
        try:
            with stack.database(label) as (url, _):
                ctx.progress(f"campaign: {label}, {mode}")
                figures = campaign_bench.run(
                    mode, path, url, stack.redis_url, queue, limit=limit, timeout=ctx.options.timeout
                )
                figures["check"] = _queue_check(stack.redis_url, queue, figures)
        finally:
            stack.purge(queue)
            path.unlink(missing_ok=True)
        return figures

    project = accept("campaign", sizes.campaign, "project")
    result.runs.append(Run("project", "project create_campaign() + fan-out", project))
    naive_run = accept("campaign-naive", sizes.campaign, "naive", limit=sizes.campaign_naive)
    result.runs.append(Run("naive_delay", "naive .delay() per recipient", naive_run))
    memory = accept("campaign-memory", sizes.campaign_memory, "project")
    result.runs.append(Run("memory", f"project, {sizes.campaign_memory:,} rows", memory))
    versus = ratio(project["per_s"], naive_run["per_s"])
    result.ratios += [
        Ratio("project_vs_naive", "project / naive .delay()", versus, "per_s"),
        Ratio(
            "project_rate",
            "project recipients/s",
            project["per_s"],
            "per_s",
            f">= {CAMPAIGN_RATE_TARGET:,}",
            _at_least(project["per_s"], CAMPAIGN_RATE_TARGET),
            "rate",
            minimum=CAMPAIGN_RATE_TARGET,
        ),
        Ratio(
            "memory_rss",
            f"peak RSS, {sizes.campaign_memory:,} rows",
            memory["peak_rss_mb"],
            "peak_rss_mb",
            f"<= {CAMPAIGN_RSS_TARGET_MB} MB",
            memory["peak_rss_mb"] <= CAMPAIGN_RSS_TARGET_MB,
            "int",
            maximum=CAMPAIGN_RSS_TARGET_MB,
        ),
    ]
    result.notes += [
        "each accepting process runs alone (python -m tests.bench.campaign); peak RSS is its VmHWM",
        "project: read the CSV, fill and check the template, normalise phones (libphonenumber), record "
        "in batches, then publish every send job (the fan-out task's body, run in the same process)",
        f"naive: str.format() per row and .delay() of a task carrying the whole provider request; "
        f"timed on the first {sizes.campaign_naive:,} rows",
        "check: jobs found in the Redis queue afterwards",
    ]


def _queue_check(redis_url: str, queue: str, figures: dict[str, Any]) -> str:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        found = client.llen(queue)
    finally:
        client.close()
    return f"{found:,}/{figures['jobs']:,} jobs in Redis"


Scenario = Callable[[Context, ScenarioResult], None]
"""Fills in the result as it goes, so a scenario that fails midway keeps the runs it finished."""

SCENARIO_FUNCTIONS: dict[str, Scenario] = {
    "throughput": throughput,
    "precision": precision,
    "paced": paced_bench.paced_scenario,
    "learn": learn_bench.learn_scenario,
    "storm": storm,
    "enqueue": enqueue_scenario,
    "campaign": campaign_scenario,
    "reconcile": reconcile_bench.reconcile_scenario,
}
