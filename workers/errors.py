"""The errors wadispatch raises: every one derives from :class:`WadispatchError`.

Those defined elsewhere name their module; a second base (ValueError, LookupError) is kept for
callers that catch the built-in kind.

WadispatchError
├── MessageValidationError   bad send request: .errors lists every (path, rule); a ValueError
├── ConfigurationError       a missing or invalid setting (names the environment variable)
│   ├── LedgerBehind         the ledger's schema is older than this release: run `wadispatch db upgrade`
│   └── UnknownLedgerSchema  the database holds tables or a revision this release cannot upgrade
├── UnknownMessage           no message with that id in the ledger; a LookupError
├── UnknownDeadLetter        no dead letter with that id; a LookupError
├── LedgerConflict           the ledger refused a state change
│   ├── IllegalTransition    the state machine does not allow from → to
│   └── StaleState           the message is no longer in the state the caller expected
├── SignatureError           a webhook not signed as its provider signs (the API answers 401)
├── MalformedWebhook         a webhook body that is not the provider's JSON (400); a ValueError
├── JsonInputError           wadispatch.jsonread: JSON that is invalid or breaks a limit; a ValueError
├── CampaignInputError       wadispatch.campaigns.errors: the campaign cannot start; a ValueError
├── UnknownCampaign          wadispatch.campaigns.errors: no campaign with that id; a LookupError
├── FileError                wadispatch.campaigns.reader: the file as a whole cannot be read; a ValueError
├── RowError                 wadispatch.campaigns.template: one row cannot be sent; a ValueError
├── PhoneError               wadispatch.campaigns.phones: a phone number cannot be used; a ValueError
├── ScheduleError            wadispatch.validity: bad start, send window, zone or validity; a ValueError
├── ApiError                 wadispatch.api.errors: an HTTP error answer (status, code, message)
├── PublishError             wadispatch.publishing: the broker could not be reached; its messages stay pending
├── NotRecorded              wadispatch.recording: the ledger did not take a send's mark or result
└── SendDeferred             wadispatch.tasks.send: why a send was put off (the retry's reason)

The provider simulator (:mod:`wadispatch.simulator`) is a stand-in for the providers, not part of
what wadispatch raises: its ``InvalidRequest`` becomes the fake provider's HTTP answer.
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


class LedgerBehind(ConfigurationError):
    """The ledger's schema is older than this release: ``wadispatch db upgrade`` brings it up to date."""


class UnknownLedgerSchema(ConfigurationError):
    """The database's tables are not a ledger this release can upgrade, or carry a revision it does
    not know (a newer release upgraded them)."""


class UnknownMessage(WadispatchError, LookupError):
    """No message with this id exists in the ledger."""


class UnknownDeadLetter(WadispatchError, LookupError):
    """No dead letter with this id exists in the ledger."""


class LedgerConflict(WadispatchError):
    """The ledger refused a state change and wrote nothing."""


class IllegalTransition(LedgerConflict):
    """The state machine does not allow this transition."""


class StaleState(LedgerConflict):
    """The message was not in the state the caller expected (another worker moved it)."""


class SignatureError(WadispatchError):
    """The webhook is not signed as its provider signs (answered 401). The message names what is
    wrong, never a secret."""


class MalformedWebhook(WadispatchError, ValueError):
    """The body is not the JSON the provider sends (answered 400)."""
