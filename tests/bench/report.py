"""Showing results: one rich table per scenario (runs, then ratios against targets), and the JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from tests.bench.options import BenchOptions
from tests.bench.results import Format, ScenarioResult


def format_value(value: Any, kind: Format) -> str:
    """One figure as the table shows it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "int":
        return f"{value:,.0f}" if isinstance(value, int | float) else str(value)
    if kind == "rate":
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    if kind == "seconds":
        return f"{value:.2f} s"
    if kind == "ms":
        return f"{value:.2f} ms"
    if kind == "percent":
        return f"{value:.0f}%"
    if kind == "ratio":
        return f"{value:.2f}x" if value < 100 else f"{value:.0f}x"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def scenario_table(result: ScenarioResult) -> Table:
    """The scenario's runs (one row each), then its ratios under the column each one compares."""
    table = Table(title=result.title, title_justify="left", caption_justify="left")
    table.add_column("run", justify="left")
    for column in result.columns:
        table.add_column(column.header, justify="left" if column.format == "text" else "right")
    table.add_column("target", justify="right")
    table.add_column("", justify="left")
    for run in result.runs:
        cells = [format_value(run.figures.get(column.key), column.format) for column in result.columns]
        if run.figures.get("error"):
            verdict = "[red]incomplete[/]"
        elif run.figures.get("stopped"):
            verdict = "[yellow]stopped[/]"
        else:
            verdict = ""
        table.add_row(run.label, *cells, "", verdict)
    if result.ratios:
        table.add_section()
    keys = [column.key for column in result.columns]
    for ratio in result.ratios:
        cells = [""] * len(keys)
        index = keys.index(ratio.column) if ratio.column in keys else len(keys) - 1
        cells[index] = f"[bold]{format_value(ratio.value, ratio.format)}[/]"
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: ""}[ratio.met]
        table.add_row(ratio.label, *cells, ratio.target or "", verdict)
    captions = list(result.notes)
    for run in result.runs:
        if run.figures.get("error"):
            captions.append(f"[red]{run.label}: {run.figures['error']}[/]")
        elif run.figures.get("stopped"):
            captions.append(f"[yellow]{run.label}: {run.figures['stopped']}[/]")
    if result.error:
        captions.append(f"[red]scenario failed: {result.error}[/]")
    captions.append(f"scenario time: {result.seconds:.0f} s")
    table.caption = "\n".join(captions)
    return table


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def report_json(
    options: BenchOptions,
    results: list[ScenarioResult],
    *,
    started_at: datetime,
    seconds: float,
    setup: dict[str, Any],
    interrupted: bool = False,
) -> dict[str, Any]:
    """Every figure of the run as JSON-ready data."""
    return {
        "benchmark": "wadispatch",
        "started_at": started_at.astimezone(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "quick": options.quick,
        "interrupted": interrupted,
        "machine": machine(),
        "setup": setup,
        "sizes": vars(options.sizes),
        "scenarios": {result.name: result.as_json() for result in results},
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` (its directory created), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    partial.replace(path)
