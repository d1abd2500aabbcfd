"""Running the selected scenarios on one stack, printing each table and keeping the JSON current."""

from __future__ import annotations

import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from wadispatch.settings import Settings
from wadispatch.simulator import SimulatorConfig

from tests.bench.options import BenchOptions
from tests.bench.report import report_json, scenario_table, write_json
from tests.bench.results import ScenarioResult
from tests.bench.scenarios import HEALTHY, SCENARIO_FUNCTIONS, Context
from tests.bench.stack import Stack


def run_bench(options: BenchOptions, console: Console | None = None) -> int:
    """Run the benchmark; return the exit code.

    0 when every scenario ran to the end (targets missed or not, unless ``options.strict``), 1 when
    a scenario failed or a run did not finish, 130 when interrupted. The JSON (``options.json_path``)
    is rewritten after every scenario, so an interrupted run keeps what it measured.
    """
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    settings = Settings()
    started_at, started = datetime.now(UTC), time.perf_counter()
    results: list[ScenarioResult] = []
    setup: dict[str, Any] = {
        "worker_pool": settings.worker_pool,
        "worker_concurrency": settings.worker_concurrency,
        "naive_pool": options.naive_pool,
        "naive_concurrency": options.naive_concurrency,
        "naive_client": options.naive_client,
        "limited_workers": options.limited_workers,
        "limited_pool": options.limited_pool,
        "limited_concurrency": options.limited_concurrency,
        "database": "postgresql (a schema per run)" if options.database_url else "sqlite (a file per run)",
    }
    interrupted = False

    def save() -> None:
        if options.json_path is not None:
            data = report_json(
                options,
                results,
                started_at=started_at,
                seconds=time.perf_counter() - started,
                setup=setup,
                interrupted=interrupted,
            )
            write_json(options.json_path, data)

    stack = Stack(options, SimulatorConfig.model_validate({**HEALTHY, "seed": 4}))
    try:
        with stack, console.status("starting Redis and the simulator") as status:
            setup["redis"] = stack.redis_source
            setup["simulator"] = stack.sim.url
            setup["workdir"] = str(stack.workdir)
            console.print(
                f"redis: {stack.redis_source}; simulator: {stack.sim.url} (own process); "
                f"ledger: {setup['database']}; project workers: {settings.worker_pool} pool, "
                f"concurrency {settings.worker_concurrency}",
                soft_wrap=True,
            )
            console.print(f"work directory: {stack.workdir}", soft_wrap=True)
            context = Context(
                stack, options, settings.worker_pool, settings.worker_concurrency, status.update
            )
            for name in options.scenarios:
                result = ScenarioResult(name, title=name)
                results.append(result)
                begun = time.perf_counter()
                try:
                    SCENARIO_FUNCTIONS[name](context, result)
                except Exception as exc:  # one scenario's failure must not lose the others
                    stack.keep_workdir = True
                    result.error = f"{type(exc).__name__}: {exc}"
                    (stack.workdir / f"{name}-error.txt").write_text(traceback.format_exc())
                finally:
                    result.seconds = time.perf_counter() - begun
                if any(run.figures.get("error") for run in result.runs):
                    stack.keep_workdir = True
                console.print(scenario_table(result))
                save()
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted: everything the benchmark started is stopped[/]")
    finally:
        signal.signal(signal.SIGTERM, previous)
    save()
    console.print(f"total time: {time.perf_counter() - started:.0f} s")
    if options.json_path is not None:
        console.print(f"figures: {options.json_path}")
    if stack.keep_workdir:
        console.print(f"logs kept in {stack.workdir}")
    if interrupted:
        return 130
    failed = [result.name for result in results if result.error or _unfinished(result)]
    missed = [label for result in results for label in result.missed_targets()]
    if failed:
        console.print(f"[red]did not finish: {', '.join(failed)}[/]")
        return 1
    if missed:
        console.print(f"[yellow]targets missed: {'; '.join(missed)}[/]")
        return 1 if options.strict else 0
    return 0


def _unfinished(result: ScenarioResult) -> bool:
    return any(run.figures.get("error") for run in result.runs)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
