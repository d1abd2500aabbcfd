"""Which recipients the simulator refuses, decided in advance and the same on every run.

A recipient's fate depends only on its digits and the config: the explicit lists first (opted out
wins over window closed), then a stable hash of ``(seed, digits)`` mapped to ``[0, 1)`` and compared
with the shares: ``[0, window_closed_share)`` is a closed window, the next ``opted_out_share`` is
opted out. A demo or a test can therefore call :func:`recipient_fate` to know the answer before
sending.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from wadispatch.simulator.config import SimulatorConfig

Fate = Literal["ok", "window_closed", "opted_out"]
_SCALE = float(1 << 64)


def digits_of(phone: str) -> str:
    """The digits of a phone number (``"+255 712-345"`` → ``"255712345"``)."""
    return "".join(ch for ch in phone if ch.isdigit())


def fate_point(digits: str, seed: int) -> float:
    """A stable point in ``[0, 1)`` for these digits and seed."""
    digest = hashlib.blake2b(f"{seed}:{digits}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def recipient_fate(digits: str, config: SimulatorConfig) -> Fate:
    """``"ok"``, ``"window_closed"`` or ``"opted_out"`` for a recipient (pure, deterministic)."""
    return FateJudge(config)(digits)


class FateJudge:
    """:func:`recipient_fate` with the config's lists turned into sets once (the hot path's form)."""

    __slots__ = ("_closed", "_closed_lists", "_opted", "_opted_lists", "_seed")

    def __init__(self, config: SimulatorConfig) -> None:
        self._opted_lists = frozenset(config.opted_out_recipients)
        self._closed_lists = frozenset(config.window_closed_recipients)
        self._closed = config.window_closed_share
        self._opted = config.window_closed_share + config.opted_out_share
        self._seed = config.seed

    def __call__(self, digits: str) -> Fate:
        if not digits.isdigit():
            digits = digits_of(digits)
        if digits in self._opted_lists:
            return "opted_out"
        if digits in self._closed_lists:
            return "window_closed"
        if self._opted <= 0.0:
            return "ok"
        point = fate_point(digits, self._seed)
        if point < self._closed:
            return "window_closed"
        if point < self._opted:
            return "opted_out"
        return "ok"
