"""The message state machine, in one place. Pure: no I/O.

    pending ──▶ sending ──▶ sent ──▶ delivered ──▶ read
       │  ▲        │          │   └─────────────────▲
       │  └────────┤          └──▶ failed             (a provider callback)
       └───────────┴──▶ failed                         (cancelled, expired, permanent error)

``sending → pending`` is a retry (rate-limited or transient). ``failed`` always carries a reason.
Statuses never move backwards: a late ``delivered`` after ``read`` is refused.
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


def check_transition(from_state: State | None, to_state: State, reason: str | None) -> None:
    """Raise :class:`IllegalTransition` unless the state machine allows ``from → to``."""
    if to_state not in ALLOWED[from_state]:
        raise IllegalTransition(f"{from_state or '(new)'} → {to_state} is not allowed")
    if to_state is State.FAILED and not reason:
        raise IllegalTransition("a transition to failed needs a reason")


#: The provider code of an outcome made without a request: the limiter held the message back.
THROTTLED = "throttled"
