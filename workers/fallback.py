"""When a message goes as its fallback template, and what an attempt of it records. Pure.

The engine asks these questions of each message (see :mod:`wadispatch.templates` for the model):

* a message whose 24-hour window is known closed and which has a fallback is claimed to go as
  the template (the claim records ``sent_as = 'template'``, so a crash leaves a message that goes
  as the template when it is sent again);
* an interactive attempt the provider refused for a closed window is recorded ``sending →
  pending`` with ``sent_as = 'template'`` in the same write, due at once: the template goes in
  the next attempt, and a crash between the two leaves exactly that pending message;
* an interactive message the provider accepted and later reported undeliverable for a closed
  window (a status webhook) goes back ``sent → pending`` with ``sent_as = 'template'``, due at
  once: the one move back the state machine allows (:data:`wadispatch.states.TO_TEMPLATE`);
* a template attempt whose request left ends the message: ``sent``, or ``failed`` with its
  reason, never retried (a template is sent at most once, and never in a loop).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from wadispatch.ledger.records import Change, MessageRecord
from wadispatch.providers.base import Outcome
from wadispatch.states import State
from wadispatch.templates import SENT_AS_TEMPLATE

WINDOW_CLOSED = "window_closed"
#: The transitions' detail of a message that goes as its template.
TEMPLATE_DETAIL = {"sent_as": SENT_AS_TEMPLATE}


def goes_as_template(record: MessageRecord) -> bool:
    """Whether the message's next attempt sends its fallback template."""
    return record.sent_as == SENT_AS_TEMPLATE


def can_fall_back(record: MessageRecord) -> bool:
    """Whether the message has a fallback template that has not gone yet."""
    return record.fallback is not None and record.sent_as is None


def reopens_for_template(record: MessageRecord, to_state: State, reason: str | None) -> bool:
    """Whether a provider's status sends the message again as its template instead of failing it:
    the provider accepted the interactive message, then reported it undeliverable for a closed
    window (:data:`wadispatch.states.TO_TEMPLATE`)."""
    return (
        to_state is State.FAILED
        and reason == WINDOW_CLOSED
        and record.state is State.SENT
        and can_fall_back(record)
    )


def reopened_for_template(record: MessageRecord) -> bool:
    """Whether a status just left the message ``pending`` to go as its template (no status moves
    a message to ``pending`` otherwise)."""
    return record.state is State.PENDING and goes_as_template(record)


def after_attempt(
    record: MessageRecord, outcome: Outcome, change: Change, retry_in: float | None, now: datetime
) -> tuple[Change, float | None]:
    """The change :func:`wadispatch.engine.decide` chose, adjusted for the fallback template."""
    if goes_as_template(record):
        adjusted = _template_attempt(outcome, change)
        return adjusted, retry_in if adjusted.to_state is State.PENDING else None
    if outcome.reason == WINDOW_CLOSED and can_fall_back(record) and change.to_state is State.FAILED:
        instead = replace(
            change,
            to_state=State.PENDING,
            detail={**(change.detail or {}), "next": "the fallback template goes instead"},
            next_attempt_at=now,
            sent_as=SENT_AS_TEMPLATE,
            request_made=True,
        )
        return instead, 0.0
    return change, retry_in


def _template_attempt(outcome: Outcome, change: Change) -> Change:
    detail = {**(change.detail or {}), **TEMPLATE_DETAIL}
    if change.to_state is State.PENDING and change.request_made and outcome.kind != "rate_limited":
        # The request left and may have been sent: a template is never sent twice. (A 429 is a
        # refusal, nothing was sent: that one waits for its turn like any other message.)
        return replace(
            change,
            to_state=State.FAILED,
            reason="provider_unavailable",
            detail={**detail, "gave_up": "template sent once"},
            next_attempt_at=None,
        )
    return replace(change, detail=detail)
