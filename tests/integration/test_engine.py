"""One send attempt against a real ledger, with a scripted transport standing in for HTTP."""

from __future__ import annotations

import random
import time
from collections import deque
from datetime import timedelta

import pytest

from tests.support import button_request, make_settings
from workers.engine import attempt_send, retry_delay
from workers.ledger import Ledger, utcnow
from workers.messages import validate_send_request
from workers.providers import Outcome, ProviderAdapter, ProviderRequest
from workers.settings import Settings
from workers.states import State

pytestmark = pytest.mark.integration


class ScriptedTransport:
    """Answers each send with the next scripted outcome and remembers what it was asked."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = deque(outcomes)
        self.requests: list[ProviderRequest] = []

    def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        self.requests.append(request)
        return self.outcomes.popleft()


def pending_message(ledger: Ledger, **overrides: object) -> str:
    message_id, _ = ledger.record_pending(validate_send_request(button_request(**overrides)))
    return message_id


def attempt(ledger: Ledger, transport: ScriptedTransport, settings: Settings, message_id: str):
    return attempt_send(
        message_id, ledger=ledger, transport=transport, settings=settings, rng=random.Random(7)
    )


def test_accepted_ends_sent_with_the_provider_id(ledger: Ledger, settings: Settings) -> None:
    message_id = pending_message(ledger)
    transport = ScriptedTransport(Outcome.accepted("wamid.1", 200))
    result = attempt(ledger, transport, settings, message_id)
    assert result.state == "sent"
    record = ledger.get(message_id)
    assert (record.state, record.provider_message_id, record.attempts) == (State.SENT, "wamid.1", 1)
    assert [t.to_state for t in ledger.transitions(message_id)] == [
        State.PENDING,
        State.SENDING,
        State.SENT,
    ]
    assert transport.requests[0].url.endswith("/1107264639145282/messages")


def test_permanent_ends_failed_with_reason_and_provider_error(ledger: Ledger, settings: Settings) -> None:
    message_id = pending_message(ledger)
    outcome = Outcome.permanent("window_closed", status_code=400, code="131047", message="Re-engage")
    result = attempt(ledger, ScriptedTransport(outcome), settings, message_id)
    assert result.state == "failed" and result.retry_in is None
    record = ledger.get(message_id)
    assert (record.state, record.reason, record.provider_error_code, record.provider_error_message) == (
        State.FAILED,
        "window_closed",
        "131047",
        "Re-engage",
    )
    assert ledger.transitions(message_id)[-1].detail == {
        "outcome": "permanent",
        "status_code": 400,
        "provider_code": "131047",
        "provider_message": "Re-engage",
    }


def test_rate_limited_goes_back_to_pending_for_the_providers_wait(ledger: Ledger, settings: Settings) -> None:
    message_id = pending_message(ledger)
    result = attempt(
        ledger, ScriptedTransport(Outcome.rate_limited(2.0, status_code=429)), settings, message_id
    )
    assert result.state == "retry"
    assert 2.0 <= result.retry_in <= 3.0
    record = ledger.get(message_id)
    assert record.state is State.PENDING and record.reason == "rate_limited"
    assert record.next_attempt_at is not None
    assert record.next_attempt_at - utcnow() > timedelta(seconds=1)


def test_a_retried_message_is_not_claimed_before_it_is_due(ledger: Ledger, settings: Settings) -> None:
    message_id = pending_message(ledger)
    transport = ScriptedTransport(Outcome.rate_limited(30.0, status_code=429))
    attempt(ledger, transport, settings, message_id)
    early = attempt(ledger, transport, settings, message_id)
    assert early.state == "not_due" and 28 < early.retry_in <= 31
    assert len(transport.requests) == 1


def test_transient_then_accepted_ends_sent_after_two_attempts(ledger: Ledger) -> None:
    settings = make_settings(backoff_base_seconds=0.001, backoff_cap_seconds=0.001)
    message_id = pending_message(ledger)
    transport = ScriptedTransport(
        Outcome.transient("server_error", status_code=503), Outcome.accepted("w2", 200)
    )
    assert attempt(ledger, transport, settings, message_id).state == "retry"
    assert ledger.get(message_id).next_attempt_at is not None
    time.sleep(0.01)  # past the (at most 1 ms) backoff
    assert attempt(ledger, transport, settings, message_id).state == "sent"
    history = [(t.from_state, t.to_state, t.attempt, t.reason) for t in ledger.transitions(message_id)]
    assert history == [
        (None, State.PENDING, 0, None),
        (State.PENDING, State.SENDING, 1, None),
        (State.SENDING, State.PENDING, 1, "server_error"),
        (State.PENDING, State.SENDING, 2, None),
        (State.SENDING, State.SENT, 2, None),
    ]


def test_retries_stop_at_max_attempts(ledger: Ledger) -> None:
    settings = make_settings(max_attempts=1)
    message_id = pending_message(ledger)
    result = attempt(ledger, ScriptedTransport(Outcome.transient("timeout")), settings, message_id)
    assert result.state == "failed"
    record = ledger.get(message_id)
    assert (record.state, record.reason) == (State.FAILED, "provider_unavailable")
    assert ledger.transitions(message_id)[-1].detail["gave_up"] == "attempts"


def test_retries_stop_when_the_wait_outlives_the_message(ledger: Ledger) -> None:
    settings = make_settings(max_age_seconds=10)
    message_id = pending_message(ledger)
    result = attempt(
        ledger, ScriptedTransport(Outcome.rate_limited(60.0, status_code=429)), settings, message_id
    )
    assert result.state == "failed"
    assert ledger.get(message_id).reason == "expired"


def test_missing_configuration_fails_with_reason_config_and_no_request(ledger: Ledger) -> None:
    settings = make_settings(wacr_base_url=None)
    message_id = pending_message(ledger, provider="wacr")
    transport = ScriptedTransport()
    assert attempt(ledger, transport, settings, message_id).state == "failed"
    record = ledger.get(message_id)
    assert (record.reason, record.provider_error_message) == (
        "config",
        "WADISPATCH_WACR_BASE_URL is not set (WA.cr names no host)",
    )
    assert transport.requests == []


def test_a_settled_message_is_skipped(ledger: Ledger, settings: Settings) -> None:
    message_id = pending_message(ledger)
    transport = ScriptedTransport(Outcome.accepted("w", 200))
    attempt(ledger, transport, settings, message_id)
    assert attempt(ledger, transport, settings, message_id).state == "skipped"
    assert len(transport.requests) == 1


def test_ledger_never_holds_the_credentials(ledger: Ledger, settings: Settings) -> None:
    message_id = pending_message(ledger)
    attempt(ledger, ScriptedTransport(Outcome.permanent("auth", status_code=401)), settings, message_id)
    dump = repr(ledger.get(message_id)) + repr(ledger.transitions(message_id))
    assert "meta-secret-token" not in dump


@pytest.mark.parametrize("attempts", [1, 2, 5, 12])
def test_backoff_has_full_jitter_under_a_growing_ceiling(attempts: int) -> None:
    settings = make_settings(backoff_base_seconds=1, backoff_cap_seconds=300)
    rng = random.Random(1)
    delays = [retry_delay(Outcome.transient("timeout"), attempts, settings, rng) for _ in range(200)]
    ceiling = min(300, 2 ** (attempts - 1))
    assert all(0 <= delay <= ceiling for delay in delays)
    assert max(delays) > ceiling * 0.8  # spread over the whole range, not clustered
    assert min(delays) < ceiling * 0.2
