"""``python -m tests.bench [SCENARIO ...] [--json PATH] [--quick]``: see :mod:`tests.bench`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tests.bench.naive import CLIENT_MODES
from tests.bench.options import SCENARIOS, BenchOptions, Sizes
from tests.bench.runner import run_bench


def bench_command(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help=f"Scenarios to run, in order (default: all): {', '.join(SCENARIOS)}."),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write every figure to this JSON file.")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Small message counts: a smoke test.")] = False,
    redis_url: Annotated[
        str | None, typer.Option(help="The broker (default: REDIS_URL, else a private Valkey).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="A PostgreSQL URL for the ledgers (a schema per run); default: SQLite files."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Longest project run, seconds.")] = 300.0,
    reference_timeout: Annotated[
        float, typer.Option(min=1, help="Longest naive Celery or aiohttp reference run, seconds.")
    ] = 120.0,
    stall: Annotated[
        float, typer.Option(min=1, help="Give a project run up after this long with nothing settling.")
    ] = 30.0,
    naive_pool: Annotated[str, typer.Option(help="throughput (b): the naive worker's pool.")] = "prefork",
    naive_concurrency: Annotated[int, typer.Option(min=1, help="throughput (b): the naive worker's -c.")] = 2,
    limited_workers: Annotated[
        int, typer.Option(min=1, help="precision: worker processes of the Celery rate_limit reference.")
    ] = 2,
    limited_pool: Annotated[str, typer.Option(help="precision: their pool.")] = "threads",
    limited_concurrency: Annotated[int, typer.Option(min=1, help="precision: their -c each.")] = 25,
    naive_client: Annotated[
        str,
        typer.Option(
            help="shared: one httpx.Client per naive worker process; post: httpx.post() per message."
        ),
    ] = "shared",
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the work directory (worker logs, ledgers) afterwards.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a target is missed.")] = False,
) -> None:
    """Benchmark wadispatch against its references on the simulator; print tables, write JSON."""
    chosen = tuple(scenarios or SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise typer.BadParameter(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    if naive_client not in CLIENT_MODES:
        raise typer.BadParameter(f"--naive-client must be one of {', '.join(CLIENT_MODES)}")
    options = BenchOptions(
        scenarios=chosen,
        sizes=Sizes.quick() if quick else Sizes(),
        quick=quick,
        json_path=json_path,
        redis_url=redis_url or os.environ.get("REDIS_URL") or None,
        database_url=database_url,
        timeout=timeout,
        reference_timeout=reference_timeout,
        stall_seconds=stall,
        naive_pool=naive_pool,
        naive_concurrency=naive_concurrency,
        naive_client=naive_client,
        limited_workers=limited_workers,
        limited_pool=limited_pool,
        limited_concurrency=limited_concurrency,
        keep=keep,
        strict=strict,
    )
    raise typer.Exit(run_bench(options))


def main() -> None:
    """Entry point of ``python -m tests.bench``."""
    typer.run(bench_command)


if __name__ == "__main__":
    main()
