"""The message state machine, in one place. Pure: no I/O.

    pending ──▶ sending ──▶ sent ──▶ delivered ──▶ read
       │  ▲        │          │   └─────────────────▲
       │  └────────┤          └──▶ failed             (a provider callback)
       └───────────┴──▶ failed                         (cancelled, expired, permanent error)

``sending → pending`` is a retry (rate-limited or transient). ``failed`` always carries a reason.
Statuses never move backwards: a late ``delivered`` after ``read`` is refused.

One move back is allowed, once per message (:data:`TO_TEMPLATE`): ``sent → pending`` for a message
the provider accepted and then reported undeliverable because the 24-hour window was closed, when
the message has a fallback template; the template goes instead. The interactive message never
reached anyone, and the move records for good that the message goes as its template, so it cannot
happen twice.
"""

from __future__ import annotations

from enum import StrEnum

from wadispatch.errors import IllegalTransition


class State(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


ALLOWED: dict[State | None, frozenset[State]] = {
    None: frozenset({State.PENDING}),
    State.PENDING: frozenset({State.SENDING, State.FAILED}),
    State.SENDING: frozenset({State.SENT, State.PENDING, State.FAILED}),
    State.SENT: frozenset({State.DELIVERED, State.READ, State.FAILED}),
    State.DELIVERED: frozenset({State.READ}),
    State.READ: frozenset(),
    State.FAILED: frozenset(),
}

#: States a send attempt can end in: the message left the queue for good.
SETTLED = frozenset({State.SENT, State.DELIVERED, State.READ, State.FAILED})


#: The one move back: a sent message that failed for a closed window goes again as its template.
TO_TEMPLATE = (State.SENT, State.PENDING)


def check_transition(
    from_state: State | None, to_state: State, reason: str | None, *, to_template: bool = False
) -> None:
    """Raise :class:`IllegalTransition` unless the state machine allows ``from → to``
    (``to_template``: the move that sends a message's fallback template, :data:`TO_TEMPLATE`)."""
    if to_template and (from_state, to_state) == TO_TEMPLATE and reason is None:
        return
    if to_state not in ALLOWED[from_state]:
        raise IllegalTransition(f"{from_state or '(new)'} → {to_state} is not allowed")
    if to_state is State.FAILED and not reason:
        raise IllegalTransition("a transition to failed needs a reason")


#: The provider code of an outcome made without a request: the limiter held the message back.
THROTTLED = "throttled"
