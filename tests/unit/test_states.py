"""The state machine: every allowed transition passes, every other one is refused."""

from __future__ import annotations

import itertools

import pytest
from wadispatch.errors import IllegalTransition
from wadispatch.states import ALLOWED, State, check_transition

EXPECTED_ALLOWED = {
    (None, State.PENDING),
    (State.PENDING, State.SENDING),
    (State.PENDING, State.FAILED),
    (State.SENDING, State.SENT),
    (State.SENDING, State.PENDING),
    (State.SENDING, State.FAILED),
    (State.SENT, State.DELIVERED),
    (State.SENT, State.READ),
    (State.SENT, State.FAILED),
    (State.DELIVERED, State.READ),
}
ALL_PAIRS = list(itertools.product([None, *State], State))


def test_the_table_is_the_documented_machine() -> None:
    table = {(source, target) for source, targets in ALLOWED.items() for target in targets}
    assert table == EXPECTED_ALLOWED


@pytest.mark.parametrize(("source", "target"), sorted(EXPECTED_ALLOWED, key=str))
def test_allowed_transitions_pass(source: State | None, target: State) -> None:
    check_transition(source, target, reason="provider_rejected")


@pytest.mark.parametrize(
    ("source", "target"), [pair for pair in ALL_PAIRS if pair not in EXPECTED_ALLOWED], ids=str
)
def test_every_other_transition_is_refused(source: State | None, target: State) -> None:
    with pytest.raises(IllegalTransition, match="not allowed"):
        check_transition(source, target, reason="provider_rejected")


@pytest.mark.parametrize("source", [State.PENDING, State.SENDING, State.SENT])
def test_failed_needs_a_reason(source: State) -> None:
    with pytest.raises(IllegalTransition, match="needs a reason"):
        check_transition(source, State.FAILED, reason=None)


def test_statuses_never_move_backwards() -> None:
    for later, earlier in [
        (State.READ, State.DELIVERED),
        (State.DELIVERED, State.SENT),
        (State.SENT, State.SENDING),
    ]:
        with pytest.raises(IllegalTransition):
            check_transition(later, earlier, reason=None)


def test_the_one_move_back_is_sent_to_pending_for_the_fallback_template_only() -> None:
    check_transition(State.SENT, State.PENDING, None, to_template=True)
    with pytest.raises(IllegalTransition):
        check_transition(State.SENT, State.PENDING, None)
    for source, target in [
        (State.DELIVERED, State.PENDING),
        (State.READ, State.PENDING),
        (State.FAILED, State.PENDING),
    ]:
        with pytest.raises(IllegalTransition):
            check_transition(source, target, None, to_template=True)
    with pytest.raises(IllegalTransition):
        check_transition(State.SENT, State.PENDING, "window_closed", to_template=True)
