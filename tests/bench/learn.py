"""A sender declared far above its true limit: how fast the limiter learns the real rate.

One sender declared at ``LEARN_DECLARED``/s (the project's default) whose provider (the simulator)
allows ``sizes.learn_limit``/s. The reference is the time the true limit needs, messages / limit:
nothing can be faster and stay within it. The targets: at most ``LEARN_429_PERCENT`` % of requests
answered 429, the run within ``LEARN_TIME_FACTOR`` x that time, every message sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.bench.figures import ratio
from tests.bench.results import Column, Ratio, Run, ScenarioResult

if TYPE_CHECKING:
    from tests.bench.scenarios import Context

LEARN_DECLARED = 80
LEARN_WORKERS = 2
LEARN_SEED = 13
LEARN_429_PERCENT = 5.0
LEARN_TIME_FACTOR = 1.2

LEARN_COLUMNS = [
    Column("messages", "messages", "int"),
    Column("sent", "sent", "int"),
    Column("failed", "failed", "int"),
    Column("seconds", "time", "seconds"),
    Column("observed_rate", "observed/s", "rate"),
    Column("max_in_1s", "max in 1 s", "int"),
    Column("sim_requests", "requests", "int"),
    Column("sim_429s", "429s", "int"),
    Column("percent_429", "429 share", "percent"),
]


def learn_scenario(ctx: Context, result: ScenarioResult) -> None:
    """80/s declared, the provider allows 5/s: the 429 share and the time against the true limit's."""
    sizes = ctx.options.sizes
    count, limit = sizes.learn, sizes.learn_limit
    result.title = (
        f"learn: {count} Meta messages from one sender declared {LEARN_DECLARED}/s, "
        f"the provider allows {limit}/s"
    )
    result.columns = LEARN_COLUMNS
    ctx.simulator(sender_limit=limit)
    figures = ctx.project(
        "learn", ctx.requests(count, 1, seed=LEARN_SEED), LEARN_WORKERS, default_rate=LEARN_DECLARED
    )
    ctx.simulator()
    requests = figures["sim_requests"]
    figures["percent_429"] = figures["sim_429s"] * 100 / requests if requests else None
    result.runs.append(
        Run(
            "project",
            f"project, {LEARN_WORKERS} workers, WADISPATCH_DEFAULT_RATE={LEARN_DECLARED}",
            figures,
        )
    )
    ideal = count / limit
    result.runs.append(
        Run(
            "true_limit",
            f"the true limit: {count} / {limit}/s",
            {"messages": count, "seconds": ideal, "observed_rate": float(limit), "max_in_1s": limit},
        )
    )
    complete = bool(figures["complete"])
    share = figures["percent_429"]
    time_ratio = ratio(figures["seconds"], ideal) if complete else None
    all_sent = figures["sent"] == count and figures["failed"] == 0
    result.ratios += [
        Ratio(
            "share_429",
            "429s / requests",
            share,
            "percent_429",
            f"<= {LEARN_429_PERCENT:.0f}%",
            None if share is None else share <= LEARN_429_PERCENT,
            "percent",
            maximum=LEARN_429_PERCENT,
        ),
        Ratio(
            "time_vs_true_limit",
            "time / the true limit's time",
            time_ratio,
            "seconds",
            f"<= {LEARN_TIME_FACTOR:.1f}",
            None if time_ratio is None else time_ratio <= LEARN_TIME_FACTOR,
            maximum=LEARN_TIME_FACTOR,
        ),
        Ratio(
            "sent", "every message sent", figures["sent"], "sent", str(count), all_sent, "int", minimum=count
        ),
        Ratio(
            "failed",
            "none failed",
            figures["failed"],
            "failed",
            "0",
            figures["failed"] == 0,
            "int",
            maximum=0,
        ),
    ]
    result.notes += [
        f"the true limit's time: {count} messages / {limit}/s = {ideal:.0f} s (the reference)",
        "requests and 429s: as the simulator counted them; 429s / requests is the learning's waste",
        f"{LEARN_WORKERS} workers share the limiter; time: first enqueue to every message settled",
    ]
