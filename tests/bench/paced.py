"""Paced sends, the case users live in: every sender at its declared limit (filled in by its owner)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.bench.results import ScenarioResult

if TYPE_CHECKING:
    from tests.bench.scenarios import Context


def paced_scenario(ctx: Context, result: ScenarioResult) -> None:
    """Senders held to their declared limits by the simulator."""
    result.title = "paced: not measured yet"
