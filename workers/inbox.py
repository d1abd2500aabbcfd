"""Applying webhook events: the ledger, the 24-hour window and the user's event tasks.

The I/O side of :mod:`wadispatch.webhooks` (which only verifies and parses). Per event:

* an inbound message or a reply opens the window of its (provider, sender, recipient) until 24
  hours after the person wrote, under their phone number and their business-scoped user id
  (each that the webhook names; one that names neither opens nothing, and is logged);
* a system message (a changed number or user id, a changed identity) opens nothing; a changed
  number or user id moves an open window to the new one;
* a reply is recorded on the message it answers (``reply_id``, ``reply_title``, ``replied_at``);
* a text message or a reply whose text is an opt-out keyword (:mod:`wadispatch.optout`; a
  reply's text is the title chosen) puts its writer, under every name known, on the suppression
  list (source ``keyword``) of the sender written to, or of every sender
  (``WADISPATCH_OPT_OUT_SCOPE``), and fails their queued campaign messages ``suppressed``, before
  the event is recorded; then the ``opted_out`` event goes to the user's code;
* a status moves the message through the state machine (never backwards; a stale or repeated
  status changes nothing); ``failed`` keeps the provider's code and message, a failure for the
  24-hour window marks the pair closed, and an opt-out puts the recipient on the suppression list;
  a failure for the 24-hour window of a message with a fallback template not sent yet sends the
  template instead (the message goes back to ``pending``, and its job is published);
* an event seen before (same provider and event key) changes nothing: a replayed inbound message
  or reply does not reopen the window, a replayed system message moves nothing;
* a status or reply for a message whose send is not recorded yet (the provider called back
  before the worker recorded its answer) is kept in the ledger and applied, with these same
  effects (:func:`apply_early`), the moment the send is recorded; the webhook is answered 200;
* unknown events are logged (phone numbers masked) and acknowledged.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wadispatch import metrics
from wadispatch.events import (
    emit,
    emit_opted_out,
    opted_out_event,
    reply_event,
    status_event,
    window_closed_event,
)
from wadispatch.fallback import reopened_for_template
from wadispatch.ledger import Ledger, MessageRecord, WebhookOutcome
from wadispatch.ledger.webhooks import EarlyApplied
from wadispatch.optout import Keywords
from wadispatch.publishing import publish_message
from wadispatch.redaction import mask_phone
from wadispatch.settings import Settings
from wadispatch.states import State
from wadispatch.webhooks.events import Inbound, Reply, Status, SystemMessage, Unknown, WebhookEvent
from wadispatch.window import Opening, Pair, Windows

if TYPE_CHECKING:
    from wadispatch.campaigns.store import OptOut

log = logging.getLogger("wadispatch.webhooks")

#: Provider codes of a delivery failure because the 24-hour window was closed.
WINDOW_CLOSED_CODES = frozenset({"131047", "470", "WINDOW_CLOSED"})
#: Provider codes of a recipient who stopped messages from the business.
OPTED_OUT_CODES = frozenset({"131050", "OPTED_OUT", "CONTACT_OPTED_OUT"})
#: Meta's per-user limit of marketing messages: not an opt-out; that person may be written to
#: again after a day (a retry sooner can block them for longer).
RECIPIENT_LIMITED_CODES = frozenset({"131049"})


@dataclass
class InboxResult:
    """How many events of a webhook did what (the webhook's answer body)."""

    counts: Counter[str] = field(default_factory=Counter)


def failure_reason(status: Status) -> str:
    """The ledger's reason for a ``failed`` status: ``window_closed``, ``opted_out``,
    ``recipient_limited`` or ``undeliverable`` (any other failure the provider reports after
    accepting the message)."""
    code = (status.error_code or "").upper()
    if code in WINDOW_CLOSED_CODES:
        return "window_closed"
    if code in OPTED_OUT_CODES:
        return "opted_out"
    if code in RECIPIENT_LIMITED_CODES:
        return "recipient_limited"
    return "undeliverable"


def apply_events(
    events: list[WebhookEvent], *, ledger: Ledger, windows: Windows, settings: Settings
) -> InboxResult:
    """Apply one webhook's events, in order."""
    result = InboxResult()
    opened: list[Opening] = []
    moved: list[tuple[Pair, Pair]] = []
    closed: list[Pair] = []
    other_names = _other_names(ledger, [event for event in events if isinstance(event, Inbound | Status)])
    keywords = settings.opt_out_words
    for event in events:
        if isinstance(event, Unknown):
            log.info("ignored a %s webhook event: %s", event.provider, event.description)
            _counted(result, event, "ignored")
            continue
        if isinstance(event, SystemMessage):
            if not ledger.record_webhook_event(event.provider, event.event_key):
                _counted(result, event, "duplicates")
                continue
            log.info("a %s system message: %s", event.provider, event.kind)
            moved += [
                ((event.provider, event.sender, old), (event.provider, event.sender, new))
                for old, new in event.moves
            ]
            _counted(result, event, "system")
            continue
        if isinstance(event, Reply):
            opt_out = _opt_out(event, keywords, other_names, ledger, settings)
            outcome = ledger.apply_webhook_reply(
                event.provider,
                event.event_key,
                event.answers,
                reply_id=event.reply_id,
                reply_title=event.reply_title,
            )
            _counted(result, event, _count(outcome, "replies"))
            if opt_out is not None:
                _announce(event, opt_out, outcome.message, ledger, settings)
            if outcome.duplicate:
                continue
            opened += _openings(event, other_names)
            if outcome.message is None and not outcome.duplicate and not outcome.kept:
                log.info(
                    "a %s reply from %s answers no known message",
                    event.provider,
                    mask_phone(event.phone or event.user_id),
                )
            elif outcome.changed and outcome.message is not None:
                emit("reply", outcome.message, reply_event(outcome.message), settings)
        elif isinstance(event, Inbound):
            opt_out = _opt_out(event, keywords, other_names, ledger, settings)
            if not ledger.record_webhook_event(event.provider, event.event_key):
                _counted(result, event, "duplicates")
                continue
            if opt_out is not None:
                _announce(event, opt_out, None, ledger, settings)
            opened += _openings(event, other_names)
            _counted(result, event, "inbound")
        elif isinstance(event, Status):
            closed += _apply_status(event, ledger, settings, result)
    _update_windows(windows, opened, closed, moved)
    return result


def _apply_status(event: Status, ledger: Ledger, settings: Settings, result: InboxResult) -> list[Pair]:
    to_state = State(event.status)
    reason = failure_reason(event) if to_state is State.FAILED else None
    outcome = ledger.apply_webhook_status(
        event.provider,
        event.event_key,
        event.message,
        to_state,
        reason=reason,
        detail={"webhook": event.status, **({"provider_code": event.error_code} if event.error_code else {})},
        provider_error_code=event.error_code,
        provider_error_message=event.error_message,
    )
    _counted(result, event, _count(outcome, "statuses"))
    record = outcome.message
    if record is None or not outcome.changed:
        return []
    return status_effects(record, reason, ledger=ledger, settings=settings)


def status_effects(
    record: MessageRecord, reason: str | None, *, ledger: Ledger, settings: Settings
) -> list[Pair]:
    """What a status that changed a message means beyond the ledger: the user's ``status`` event;
    for an opt-out, the recipient on the suppression list (source ``provider``); for a closed
    window, the ``window_closed`` event, or, when the status sent the message back to go as its
    fallback template, its send job (no event: the message has not failed). Returns the pairs
    whose window is now known closed."""
    if reopened_for_template(record):
        _send_template(record)
        return [(record.provider, record.sender, record.recipient)]
    emit("status", record, status_event(record), settings)
    if reason == "opted_out":
        _suppress(ledger, record)
    if reason != "window_closed":
        return []
    emit("window_closed", record, window_closed_event(record), settings)
    return [(record.provider, record.sender, record.recipient)]


def apply_early(applied: list[EarlyApplied], *, ledger: Ledger, windows: Windows, settings: Settings) -> None:
    """Give the webhook events kept until their sends were recorded (and applied then, by a
    worker) the effects they would have had on arrival."""
    closed: list[Pair] = []
    for event in applied:
        if not event.changed:
            continue
        if event.kind == "reply":
            emit("reply", event.message, reply_event(event.message), settings)
        else:
            closed += status_effects(event.message, event.reason, ledger=ledger, settings=settings)
    _update_windows(windows, [], closed)


def _send_template(record: MessageRecord) -> None:
    """Publish the send job of a message that goes again as its template; with the broker down it
    stays pending and the reconciler publishes it."""
    log.info("%s: the window was closed; its fallback template goes instead", record.id)
    publish_message(record.id)


def _suppress(ledger: Ledger, record: MessageRecord) -> None:
    if not record.recipient:
        return
    from wadispatch.campaigns.store import suppress

    try:
        suppress(
            ledger, [(record.sender, record.recipient)], reason="opted out (provider)", source="provider"
        )
    except Exception as exc:  # the status is recorded; only the list's entry is lost (logged)
        log.warning("could not add an opt-out to the suppression list: %s", type(exc).__name__)


@dataclass(frozen=True)
class _KeywordOptOut:
    keyword: str
    scope: str
    sender: str | None
    done: OptOut


def _opt_out(
    event: Inbound,
    keywords: Keywords,
    other_names: dict[tuple[str, str], str],
    ledger: Ledger,
    settings: Settings,
) -> _KeywordOptOut | None:
    """If the event's text is an opt-out keyword, put its writer on the suppression list and stop
    their queued campaign messages (:func:`wadispatch.campaigns.store.opt_out`).

    Runs before the event is recorded as seen, and is idempotent: if it fails, the webhook fails
    and the provider's redelivery does it. A text message is matched by its text, a reply by the
    title of the button or row chosen (what the person saw, not the id the sender gave it).
    """
    if not keywords.enabled:
        return None
    typed = event.reply_title if isinstance(event, Reply) else event.text
    keyword = keywords.match(typed)
    if keyword is None:
        return None
    names = list(_names(event, other_names))
    if not names:
        log.info("a %s opt-out keyword names no phone number or user id: nobody suppressed", event.provider)
        return None
    scope = settings.opt_out_scope
    # A webhook that does not name the business number (WA.cr) can only suppress for all.
    sender = event.sender if scope == "sender" else None
    from wadispatch.campaigns.store import opt_out

    done = opt_out(
        ledger,
        names,
        provider=event.provider,
        sender=sender,
        reason=f"opt-out keyword {keyword}",
        source="keyword",
        detail={"opt_out_keyword": keyword},
    )
    return _KeywordOptOut(keyword, "sender" if sender else "all", sender, done)


def _announce(
    event: Inbound,
    opt_out: _KeywordOptOut,
    answered: MessageRecord | None,
    ledger: Ledger,
    settings: Settings,
) -> None:
    """Log, count and tell the user's code about an opt-out that changed something (a
    redelivered keyword adds nothing and stops nothing: it is not announced again)."""
    done = opt_out.done
    if not done.added and not done.stopped:
        return
    log.info(
        "%s wrote the opt-out keyword %s to %s: suppressed (%s), %d queued campaign message(s) stopped",
        mask_phone(event.phone or event.user_id),
        opt_out.keyword,
        event.provider,
        opt_out.scope,
        len(done.stopped),
    )
    metrics.opted_out(event.provider, opt_out.scope, len(done.stopped))
    if "opted_out" not in settings.event_tasks:
        return
    message = answered or (ledger.get(done.stopped[0]) if done.stopped else None)
    payload = opted_out_event(
        provider=event.provider,
        sender=opt_out.sender,
        keyword=opt_out.keyword,
        scope=opt_out.scope,
        message=message,
        stopped=done.stopped,
    )
    emit_opted_out(payload, settings)


def _names(event: Inbound, other_names: dict[tuple[str, str], str]) -> dict[str, None]:
    """Every name the writer of ``event`` goes by: those it gives, and the other the ledger knows."""
    names = list(event.recipients)
    names += [other for name in event.recipients if (other := other_names.get((event.provider, name)))]
    return dict.fromkeys(names)


def _counted(result: InboxResult, event: WebhookEvent, outcome: str) -> None:
    """Count an applied event in the webhook's answer and in the metrics."""
    result.counts[outcome] += 1
    event_type = _EVENT_TYPES.get(type(event), "unknown")
    metrics.webhook_event(event.provider, event_type, outcome, getattr(event, "at", None))


_EVENT_TYPES: dict[type, str] = {
    Inbound: "inbound",
    Reply: "reply",
    Status: "status",
    SystemMessage: "system",
    Unknown: "unknown",
}


def _count(outcome: WebhookOutcome, kind: str) -> str:
    if outcome.kept:
        return "kept"
    if outcome.duplicate:
        return "duplicates"
    if outcome.message is None:
        return "unmatched"
    return kind if outcome.changed else "unchanged"


def _other_names(ledger: Ledger, named: list[Inbound | Status]) -> dict[tuple[str, str], str]:
    """Learn the (phone, user id) pairs these events name together (inbound messages and
    statuses); return, for each name an inbound message gives alone, the user's other name the
    ledger knows, keyed (provider, name)."""
    others: dict[tuple[str, str], str] = {}
    for provider in {event.provider for event in named}:
        events = [event for event in named if event.provider == provider]
        pairs = [pair for event in events if (pair := event.phone_and_user_id) is not None]
        ledger.remember_contacts(provider, pairs)
        for phone, user_id in pairs:
            others[(provider, phone)], others[(provider, user_id)] = user_id, phone
        inbound = [event for event in events if isinstance(event, Inbound)]
        alone = [name for event in inbound for name in event.recipients if (provider, name) not in others]
        others.update(
            ((provider, name), other) for name, other in ledger.contact_names(provider, alone).items()
        )
    return others


def _openings(event: Inbound, other_names: dict[tuple[str, str], str]) -> list[Opening]:
    """The windows an inbound message opens: under each name it gives the writer, and the other
    name the ledger knows for them (a window opened by user id then serves a send by phone)."""
    if not event.recipients:
        log.info("an inbound %s message names no phone number or user id: no window opened", event.provider)
    return [((event.provider, event.sender, name), event.at) for name in _names(event, other_names)]


def _update_windows(
    windows: Windows, opened: list[Opening], closed: list[Pair], moved: list[tuple[Pair, Pair]] | None = None
) -> None:
    try:
        if moved:
            windows.move(moved)
        if opened:
            windows.open_at(opened)
        if closed:
            windows.close(closed)
    except Exception as exc:  # the ledger holds the events; only the send shortcut is lost
        log.warning("could not update the 24-hour windows: %s", type(exc).__name__)
