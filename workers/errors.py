"""The errors wadispatch raises, in one place.

WadispatchError
├── MessageValidationError   bad send request: .errors lists every (path, rule)
├── ConfigurationError       a missing or invalid setting (names the environment variable)
├── UnknownMessage           no message with that id in the ledger
└── LedgerConflict           the ledger refused a state change
    ├── IllegalTransition    the state machine does not allow from → to
    └── StaleState           the message is no longer in the state the caller expected
"""

from __future__ import annotations

from dataclasses import dataclass


class WadispatchError(Exception):
    """Base class of every error wadispatch raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One broken rule: where (a field path such as ``interactive.body.text``) and what."""

    path: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}"


class MessageValidationError(WadispatchError, ValueError):
    """A send request broke one or more rules; nothing was recorded or queued."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(error) for error in self.errors))

    def as_dicts(self) -> list[dict[str, str]]:
        """The errors as ``[{"path": ..., "rule": ...}]``, for JSON answers."""
        return [{"path": error.path, "rule": error.rule} for error in self.errors]


class ConfigurationError(WadispatchError):
    """A setting needed for this operation is missing or invalid."""


class UnknownMessage(WadispatchError, LookupError):
    """No message with this id exists in the ledger."""


class LedgerConflict(WadispatchError):
    """The ledger refused a state change and wrote nothing."""


class IllegalTransition(LedgerConflict):
    """The state machine does not allow this transition."""


class StaleState(LedgerConflict):
    """The message was not in the state the caller expected (another worker moved it)."""
