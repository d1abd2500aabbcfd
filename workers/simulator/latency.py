"""How long each answer takes: a draw from the configured distribution, in seconds."""

from __future__ import annotations

import math
import random

from wadispatch.simulator.config import SimulatorConfig

# The 99th percentile of the standard normal distribution.
_Z99 = 2.3263478740408408


class LatencySampler:
    """Draws answer delays; built once per config so a draw is one call to ``random``."""

    __slots__ = ("_a", "_b", "_kind", "_rng")

    def __init__(self, config: SimulatorConfig, rng: random.Random) -> None:
        self._rng = rng
        self._kind = config.latency
        if config.latency == "fixed":
            self._a, self._b = config.latency_ms / 1000.0, 0.0
        elif config.latency == "uniform":
            self._a, self._b = config.latency_min_ms / 1000.0, config.latency_max_ms / 1000.0
        else:
            median = config.latency_ms / 1000.0
            p99 = config.latency_p99_ms / 1000.0
            if median <= 0.0:
                self._kind, self._a, self._b = "fixed", 0.0, 0.0
            else:
                # The lognormal's mu is ln(median); sigma puts the 99th percentile at p99.
                sigma = math.log(p99 / median) / _Z99 if p99 > median else 0.0
                self._a, self._b = math.log(median), sigma

    def draw(self) -> float:
        """One delay in seconds (0 when the config says so)."""
        if self._kind == "fixed":
            return self._a
        if self._kind == "uniform":
            return self._rng.uniform(self._a, self._b)
        if self._b == 0.0:
            return math.exp(self._a)
        return self._rng.lognormvariate(self._a, self._b)
