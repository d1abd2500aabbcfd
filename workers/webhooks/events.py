"""What a provider's webhook tells us, in one typed form whatever the provider. Pure: no I/O.

A parser turns one webhook body into a list of these events:

* :class:`Inbound` — the recipient wrote to the sender: the 24-hour window opens;
* :class:`Reply` — an inbound message that answers one of our messages (a button or list row
  chosen); it also opens the window;
* :class:`Status` — the provider's news about one of our messages: ``sent``, ``delivered``,
  ``read`` or ``failed`` (with the provider's code and message);
* :class:`Unknown` — anything else (acknowledged and logged, never an error).

Every event carries an ``event_key``, unique per provider for one real-world event and the same
when the provider delivers the webhook again: the ledger records each key once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StatusName = Literal["sent", "delivered", "read", "failed"]
STATUS_NAMES: tuple[StatusName, ...] = ("sent", "delivered", "read", "failed")


@dataclass(frozen=True)
class MessageRef:
    """How an event names the message it is about: our id, or the provider's id(s) for it."""

    message_id: str | None = None
    provider_message_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.message_id or self.provider_message_ids)


@dataclass(frozen=True)
class Inbound:
    """The recipient ``phone`` wrote to ``sender`` (``+<digits>``; ``sender`` as we send from)."""

    provider: str
    event_key: str
    sender: str | None
    phone: str | None


@dataclass(frozen=True)
class Reply(Inbound):
    """An inbound answer to one of our messages: the chosen button or row."""

    answers: MessageRef = MessageRef()
    reply_id: str = ""
    reply_title: str | None = None
    kind: Literal["button_reply", "list_reply"] = "button_reply"


@dataclass(frozen=True)
class Status:
    """A status of one of our messages."""

    provider: str
    event_key: str
    message: MessageRef
    status: StatusName
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Unknown:
    """An event wadispatch does not act on; ``description`` says what it was (no phone numbers)."""

    provider: str
    event_key: str
    description: str


WebhookEvent = Inbound | Reply | Status | Unknown
