"""What a provider's webhook tells us, in one typed form whatever the provider. Pure: no I/O.

A parser turns one webhook body into a list of these events:

* :class:`Inbound` — the recipient wrote to the sender: the 24-hour window opens, counted from
  when they wrote (``at``);
* :class:`Reply` — an inbound message that answers one of our messages (a button or list row
  chosen); it also opens the window;
* :class:`Status` — the provider's news about one of our messages: ``sent``, ``delivered``,
  ``read`` or ``failed`` (with the provider's code and message);
* :class:`SystemMessage` — WhatsApp's own notice about a user (a changed number or user id, a
  changed identity): the user wrote nothing, so it never opens a window;
* :class:`Unknown` — anything else (acknowledged and logged, never an error).

A person is named by a phone number (``+<digits>``), a business-scoped user id (a BSUID such as
``US.13491208655302741918``, Meta's id for users who may hide their number), or both; either
may be ``None``.

Every event carries an ``event_key``, unique per provider for one real-world event and the same
when the provider delivers the webhook again: the ledger records each key once.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from datetime import datetime
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
    """The recipient ``phone`` (``+<digits>``) and/or ``user_id`` (a BSUID) wrote to ``sender``
    (as we send from) at ``at`` (aware UTC; ``None`` when the provider does not say)."""

    provider: str
    event_key: str
    sender: str | None
    phone: str | None
    _: KW_ONLY
    user_id: str | None = None
    at: datetime | None = None
    text: str | None = None
    """What the person typed, for a text message (``None`` for media, locations, replies...)."""

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every name we can send to this person by (phone, user id): each gets the window."""
        return tuple(name for name in (self.phone, self.user_id) if name)

    @property
    def phone_and_user_id(self) -> tuple[str, str] | None:
        """``(phone, user_id)`` when the webhook names both: the pair worth remembering."""
        return (self.phone, self.user_id) if self.phone and self.user_id else None


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
    _: KW_ONLY
    phone: str | None = None
    """The recipient's phone number, when the provider names it."""
    user_id: str | None = None
    """The recipient's business-scoped user id, when the provider names it."""

    @property
    def phone_and_user_id(self) -> tuple[str, str] | None:
        """``(phone, user_id)`` when the webhook names both."""
        return (self.phone, self.user_id) if self.phone and self.user_id else None


@dataclass(frozen=True)
class SystemMessage:
    """WhatsApp's notice about a user, not something the user wrote: ``kind`` is WhatsApp's
    ``system.type`` (``user_changed_number``, ``user_changed_user_id``,
    ``customer_identity_changed``, ...). ``phone`` / ``user_id`` name the user as before the
    change, ``new_phone`` / ``new_user_id`` after it (when the change gives them)."""

    provider: str
    event_key: str
    sender: str | None
    kind: str
    phone: str | None = None
    user_id: str | None = None
    new_phone: str | None = None
    new_user_id: str | None = None
    at: datetime | None = None

    @property
    def moves(self) -> tuple[tuple[str, str], ...]:
        """``(old, new)`` names of the user that changed: what was known of the old one (an open
        window) belongs to the new one."""
        pairs = ((self.phone, self.new_phone), (self.user_id, self.new_user_id))
        return tuple((old, new) for old, new in pairs if old and new and old != new)


@dataclass(frozen=True)
class Unknown:
    """An event wadispatch does not act on; ``description`` says what it was (no phone numbers)."""

    provider: str
    event_key: str
    description: str


WebhookEvent = Inbound | Reply | Status | SystemMessage | Unknown
