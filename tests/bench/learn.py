"""A sender declared far above its true limit: how fast the limiter learns the real rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.bench.results import ScenarioResult

if TYPE_CHECKING:
    from tests.bench.scenarios import Context


def learn_scenario(ctx: Context, result: ScenarioResult) -> None:
    """80/s declared, the provider allows 5/s."""
    result.title = "learn: not measured yet"
