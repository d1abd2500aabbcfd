"""What a scenario produces: its runs' figures, its ratios against targets, and how to show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["int", "rate", "seconds", "ms", "percent", "ratio", "text"]


@dataclass(frozen=True)
class Column:
    """One figure shown in a scenario's table: the key in each run's figures, header, format."""

    key: str
    header: str
    format: Format = "text"


@dataclass
class Run:
    """The figures of the project or of a reference in one scenario."""

    key: str
    label: str
    figures: dict[str, Any]


@dataclass
class Ratio:
    """A comparison, shown in the table under the column it compares (``column``)."""

    key: str
    label: str
    value: float | None
    column: str
    target: str | None = None
    met: bool | None = None
    format: Format = "ratio"
    minimum: float | None = None
    maximum: float | None = None
    """The target's bounds as numbers (for machines; ``target`` is the text people read)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "target": self.target,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "met": self.met,
        }


@dataclass
class ScenarioResult:
    """One scenario: its table's columns, its runs, its ratios, notes and the error that ended it."""

    name: str
    title: str = ""
    columns: list[Column] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": round(self.seconds, 2),
            "runs": {run.key: {"label": run.label, **run.figures} for run in self.runs},
            "ratios": {ratio.key: ratio.as_json() for ratio in self.ratios},
            "notes": self.notes,
            "error": self.error,
        }

    def missed_targets(self) -> list[str]:
        """Labels of the ratios whose target was not met."""
        return [ratio.label for ratio in self.ratios if ratio.met is False]
