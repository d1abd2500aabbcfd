"""``wadispatch demo``: the whole system on embedded defaults, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``wadispatch`` command."""
    app.command()(demo)


def demo(
    messages: Annotated[int, typer.Option(min=1, help="Messages to send.")] = 2000,
    rate: Annotated[int, typer.Option(min=1, help="The simulator's limit per sender, messages/s.")] = 80,
    latency_ms: Annotated[float, typer.Option(min=0, help="Median simulated provider latency.")] = 150.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs the worker runs at once.")] = 8,
    flower: Annotated[bool, typer.Option("--flower", help="Also start Flower and print its URL.")] = False,
    flower_port: Annotated[int, typer.Option(help="Flower's port on 127.0.0.1.")] = 5555,
    out: Annotated[Path, typer.Option(help="Where to write the CSV of outcomes.")] = Path(
        "demo-outcomes.csv"
    ),
    timeout: Annotated[float, typer.Option(min=1, help="Give up waiting after this many seconds.")] = 150.0,
) -> None:
    """Run the whole system on embedded defaults: Valkey, SQLite, the simulator and a worker."""
    from wadispatch.demo import DemoOptions, run_demo

    options = DemoOptions(
        messages=messages,
        rate=rate,
        latency_ms=latency_ms,
        concurrency=concurrency,
        flower=flower,
        flower_port=flower_port,
        out=out,
        timeout=timeout,
    )
    raise typer.Exit(run_demo(options))
