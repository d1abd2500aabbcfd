"""Paced sends, the case users live in: every sender held to its declared limit by the provider.

Two runs against a simulator that refuses more than the limit in any sliding second per sender:

* many senders at once (10 senders at 80/s, 2 workers): each sender's observed rate against its limit,
  no 429, and the workers' CPU per message against the same messages sent unpaced in the same
  scenario (pacing must not cost CPU);
* one sender shared by many worker processes (1 sender at 100/s, 4 workers): the rate, no 429, and never
  more than the limit in any second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.bench.figures import ratio
from tests.bench.results import Column, Ratio, Run, ScenarioResult

if TYPE_CHECKING:
    from tests.bench.scenarios import Context

PACED_SEED, PACED_ONE_SEED = 31, 37
UNLIMITED_RATE = 1_000_000
RATE_TARGET = 0.95
"""Every sender of the many-senders run: at least this share of its declared limit."""
ONE_RATE_TARGET = 0.97
"""The one sender shared by four workers: at least this share of its limit."""

PACED_COLUMNS = [
    Column("messages", "messages", "int"),
    Column("sim_accepted", "accepted", "int"),
    Column("seconds", "time", "seconds"),
    Column("msgs_per_s", "msgs/s", "rate"),
    Column("slowest_sender_rate", "slowest sender/s", "rate"),
    Column("max_in_1s", "max in 1 s (one sender)", "int"),
    Column("sim_429s", "429s", "int"),
    Column("worker_cpu_ms_per_msg", "CPU/msg", "ms"),
    Column("box_cpu_ms_per_msg", "box CPU/msg", "ms"),
]


def paced_scenario(ctx: Context, result: ScenarioResult) -> None:
    """10 senders at 80/s over 2 workers (and the same unpaced), then 1 sender at 100/s over 4."""
    sizes = ctx.options.sizes
    senders, limit = sizes.paced_senders, sizes.paced_rate
    result.title = (
        f"paced: {sizes.paced} messages over {senders} senders at {limit}/s (2 workers); "
        f"{sizes.paced_one} over 1 sender at {sizes.paced_one_rate}/s ({sizes.paced_one_workers} workers); "
        "the simulator refuses more than the limit in any sliding second"
    )
    result.columns = PACED_COLUMNS

    ctx.simulator(sender_limit=limit)
    requests = ctx.requests(sizes.paced, senders, seed=PACED_SEED)
    paced = _with_slowest(ctx.project("paced", requests, 2, default_rate=limit))
    result.runs.append(Run("paced", f"project, 2 workers, {senders} senders declared {limit}/s", paced))

    ctx.simulator()
    requests = ctx.requests(sizes.paced, senders, seed=PACED_SEED)
    unpaced = _with_slowest(ctx.project("unpaced", requests, 2, default_rate=UNLIMITED_RATE))
    result.runs.append(Run("unpaced", "the same messages, no limit (the CPU reference)", unpaced))

    one_limit = sizes.paced_one_rate
    ctx.simulator(sender_limit=one_limit)
    requests = ctx.requests(sizes.paced_one, 1, seed=PACED_ONE_SEED)
    workers = sizes.paced_one_workers
    one = _with_slowest(ctx.project("paced-one", requests, workers, default_rate=one_limit))
    result.runs.append(Run("paced_one", f"project, {workers} workers, 1 sender declared {one_limit}/s", one))
    ctx.simulator()

    slowest = ratio(paced["slowest_sender_rate"] if paced["complete"] else None, limit)
    cpu = ratio(paced["worker_cpu_ms_per_msg"], unpaced["worker_cpu_ms_per_msg"])
    one_rate = ratio(one["observed_rate"] if one["complete"] else None, one_limit)
    result.ratios += [
        Ratio(
            "slowest_sender_vs_limit",
            f"slowest of {senders} senders / {limit}",
            slowest,
            "slowest_sender_rate",
            f">= {RATE_TARGET:.2f}",
            None if slowest is None else slowest >= RATE_TARGET,
            minimum=RATE_TARGET,
        ),
        _no_429s("paced_429s", "10 senders: 429s", paced),
        Ratio(
            "paced_cpu_vs_unpaced",
            "10 senders: CPU/msg paced / unpaced",
            cpu,
            "worker_cpu_ms_per_msg",
            "<= 1.00",
            None if cpu is None else cpu <= 1.0,
            maximum=1.0,
        ),
        Ratio(
            "one_sender_vs_limit",
            f"1 sender over {workers} workers / {one_limit}",
            one_rate,
            "msgs_per_s",
            f">= {ONE_RATE_TARGET:.2f}",
            None if one_rate is None else one_rate >= ONE_RATE_TARGET,
            minimum=ONE_RATE_TARGET,
        ),
        _no_429s("one_429s", "1 sender: 429s", one),
        Ratio(
            "one_max_in_1s",
            "1 sender: most accepted in any second",
            one["max_in_1s"],
            "max_in_1s",
            f"<= {one_limit}",
            one["max_in_1s"] <= one_limit,
            "int",
            maximum=one_limit,
        ),
    ]
    result.notes += [
        "slowest sender/s: each sender's accepted sends at the simulator, (n - 1) / (last - first); the "
        "lowest of them",
        "max in 1 s: the most accepted sends of one sender in any sliding second (the provider's window)",
        "CPU/msg: the worker processes' CPU; box CPU/msg: the whole machine's, per message",
    ]


def _with_slowest(figures: dict[str, Any]) -> dict[str, Any]:
    senders = figures.get("per_sender", {})
    rates = [entry["rate"] for entry in senders.values() if entry["rate"] is not None]
    figures["slowest_sender_rate"] = min(rates, default=None)
    figures["max_in_1s"] = max((entry["max_in_1s"] for entry in senders.values()), default=0)
    return figures


def _no_429s(key: str, label: str, figures: dict[str, Any]) -> Ratio:
    return Ratio(key, label, figures["sim_429s"], "sim_429s", "0", figures["sim_429s"] == 0, "int", maximum=0)
