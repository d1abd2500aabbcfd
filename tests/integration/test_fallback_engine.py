"""The fallback template in the engine, with a scripted transport and an in-memory window store:
a window known closed sends the template without asking for the interactive message; a refusal
for a closed window sends the template in the next attempt, and so does a closed window reported
by a status webhook after the provider accepted the message; a template is sent at most once."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from wadispatch.engine import BatchResult, send_batch
from wadispatch.ledger import Ledger, WebhookOutcome
from wadispatch.messages import validate_send_request
from wadispatch.providers import Outcome, ProviderAdapter, ProviderRequest
from wadispatch.ratelimit import Unlimited
from wadispatch.states import State
from wadispatch.transport import SendLoop
from wadispatch.webhooks.events import MessageRef

from tests.integration.test_engine_window import MemoryWindows
from tests.support import button_request, make_settings

pytestmark = pytest.mark.integration

TEMPLATE = {"name": "order_ready", "language": "en_US", "body_parameters": ["Asha"], "quick_replies": ["yes"]}
WINDOW_CLOSED = Outcome.permanent("window_closed", status_code=400, code="131047", message="Re-engagement")


class RecordingTransport:
    """Answers from a script, one per request, and keeps the bodies it was sent."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.bodies: list[dict[str, object]] = []

    async def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        self.bodies.append(request.json)
        return self.outcomes.pop(0)

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def loop() -> Iterator[SendLoop]:
    send_loop = SendLoop(make_settings())
    yield send_loop
    send_loop.close()


def with_fallback(ledger: Ledger) -> str:
    return ledger.record_pending(validate_send_request(button_request(fallback=TEMPLATE)))[0]


def attempt(
    ledger: Ledger, loop: SendLoop, transport: RecordingTransport, ids: list[str], windows: MemoryWindows
) -> BatchResult:
    loop.transport = transport  # type: ignore[assignment]
    return send_batch(
        ids,
        ledger=ledger,
        limiter=Unlimited(),
        loop=loop,
        settings=make_settings(),
        rng=random.Random(1),
        windows=windows,
    )


def test_a_window_known_closed_sends_the_template_in_one_request(ledger: Ledger, loop: SendLoop) -> None:
    message_id = with_fallback(ledger)
    record = ledger.get(message_id)
    windows = MemoryWindows([(record.provider, record.sender, record.recipient)])
    transport = RecordingTransport(Outcome.accepted("wamid.T1", 200))

    result = attempt(ledger, loop, transport, [message_id], windows)

    assert result.sent == [message_id]
    assert [body["type"] for body in transport.bodies] == ["template"]
    assert transport.bodies[0]["template"]["name"] == "order_ready"  # type: ignore[index]
    sent = ledger.get(message_id)
    assert (sent.state, sent.sent_as, sent.attempts) == (State.SENT, "template", 1)
    claim, settle = ledger.transitions(message_id)[1:]
    assert claim.detail == {"sent_as": "template", "window": "known closed"}
    assert settle.detail is not None and settle.detail["sent_as"] == "template"


def test_a_refusal_for_a_closed_window_sends_the_template_next(ledger: Ledger, loop: SendLoop) -> None:
    message_id = with_fallback(ledger)
    windows = MemoryWindows()
    transport = RecordingTransport(WINDOW_CLOSED, Outcome.accepted("wamid.T2", 200))

    first = attempt(ledger, loop, transport, [message_id], windows)
    assert not first.failed and [later.delay for later in first.later] == [0.0]
    between = ledger.get(message_id)  # what a crash here leaves: a pending message, as a template
    assert (between.state, between.sent_as, between.reason) == (State.PENDING, "template", "window_closed")
    assert windows.closed_calls, "the refused pair is marked closed for the next messages"

    second = attempt(ledger, loop, transport, [message_id], windows)

    assert second.sent == [message_id]
    assert [body["type"] for body in transport.bodies] == ["interactive", "template"]
    sent = ledger.get(message_id)
    assert (sent.state, sent.sent_as, sent.attempts, sent.provider_message_id) == (
        State.SENT,
        "template",
        2,
        "wamid.T2",
    )


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        (WINDOW_CLOSED, "window_closed"),
        (Outcome.transient("server_error", status_code=503), "provider_unavailable"),
    ],
)
def test_a_template_refused_ends_failed_after_one_request(
    ledger: Ledger, loop: SendLoop, refusal: Outcome, reason: str
) -> None:
    message_id = with_fallback(ledger)
    transport = RecordingTransport(WINDOW_CLOSED, refusal)
    windows = MemoryWindows()

    attempt(ledger, loop, transport, [message_id], windows)
    result = attempt(ledger, loop, transport, [message_id], windows)

    assert result.failed == {message_id: reason} and not result.later
    failed = ledger.get(message_id)
    assert (failed.state, failed.reason, failed.sent_as) == (State.FAILED, reason, "template")
    assert [body["type"] for body in transport.bodies] == ["interactive", "template"]


def test_without_a_fallback_a_closed_window_still_fails(ledger: Ledger, loop: SendLoop) -> None:
    message_id = ledger.record_pending(validate_send_request(button_request()))[0]
    transport = RecordingTransport(WINDOW_CLOSED)

    result = attempt(ledger, loop, transport, [message_id], MemoryWindows())

    assert result.failed == {message_id: "window_closed"}
    assert ledger.get(message_id).sent_as is None


def closed_window_status(ledger: Ledger, provider_message_id: str, key: str = "1") -> WebhookOutcome:
    """Meta's status webhook: the message it accepted failed, 131047, for a closed window."""
    return ledger.apply_webhook_status(
        "meta",
        f"status:{provider_message_id}:failed:{key}",
        MessageRef(provider_message_ids=(provider_message_id,)),
        State.FAILED,
        reason="window_closed",
        detail={"webhook": "failed", "provider_code": "131047"},
        provider_error_code="131047",
        provider_error_message="Re-engagement message",
    )


def test_a_sent_message_reported_failed_for_a_closed_window_goes_again_as_its_template(
    ledger: Ledger, loop: SendLoop
) -> None:
    message_id = with_fallback(ledger)
    transport = RecordingTransport(Outcome.accepted("wamid.I1", 200), Outcome.accepted("wamid.T3", 200))
    attempt(ledger, loop, transport, [message_id], MemoryWindows())

    outcome = closed_window_status(ledger, "wamid.I1")

    assert outcome.changed and outcome.message is not None
    reopened = ledger.get(message_id)
    assert (reopened.state, reopened.sent_as, reopened.reason, reopened.provider_message_id) == (
        State.PENDING,
        "template",
        None,
        None,
    )
    assert reopened.next_attempt_at is not None
    back = ledger.transitions(message_id)[-1]
    assert (back.from_state, back.to_state, back.reason) == (State.SENT, State.PENDING, None)
    assert back.detail is not None
    assert back.detail["interactive_provider_message_id"] == "wamid.I1"
    assert back.detail["provider_code"] == "131047"
    assert back.detail["next"] == "the fallback template goes instead"

    second = attempt(ledger, loop, transport, [message_id], MemoryWindows())

    assert second.sent == [message_id]
    assert [body["type"] for body in transport.bodies] == ["interactive", "template"]
    sent = ledger.get(message_id)
    assert (sent.state, sent.sent_as, sent.attempts, sent.provider_message_id) == (
        State.SENT,
        "template",
        2,
        "wamid.T3",
    )
    # A late duplicate of the interactive message's failure names no message any more.
    assert not closed_window_status(ledger, "wamid.I1", key="again").changed
    # The template reported failed in turn ends the message: a message falls back once.
    failed = closed_window_status(ledger, "wamid.T3")
    assert failed.changed
    settled = ledger.get(message_id)
    assert (settled.state, settled.reason, settled.sent_as) == (State.FAILED, "window_closed", "template")
    states = [(t.from_state, t.to_state) for t in ledger.transitions(message_id)]
    assert states == [
        (None, State.PENDING),
        (State.PENDING, State.SENDING),
        (State.SENDING, State.SENT),
        (State.SENT, State.PENDING),
        (State.PENDING, State.SENDING),
        (State.SENDING, State.SENT),
        (State.SENT, State.FAILED),
    ]


def test_a_closed_window_failure_before_the_send_is_recorded_sends_the_template_too(
    ledger: Ledger, loop: SendLoop
) -> None:
    message_id = with_fallback(ledger)
    assert closed_window_status(ledger, "wamid.I2").kept  # the webhook beat the worker's record
    transport = RecordingTransport(Outcome.accepted("wamid.I2", 200), Outcome.accepted("wamid.T4", 200))

    first = attempt(ledger, loop, transport, [message_id], MemoryWindows())

    assert [(event.kind, event.reason, event.message.state) for event in first.early_events] == [
        ("status", "window_closed", State.PENDING)
    ]
    assert ledger.get(message_id).sent_as == "template"
    second = attempt(ledger, loop, transport, [message_id], MemoryWindows())
    assert second.sent == [message_id]
    assert [body["type"] for body in transport.bodies] == ["interactive", "template"]


def test_without_a_fallback_a_closed_window_reported_later_fails_the_message(
    ledger: Ledger, loop: SendLoop
) -> None:
    message_id = ledger.record_pending(validate_send_request(button_request()))[0]
    attempt(
        ledger, loop, RecordingTransport(Outcome.accepted("wamid.I3", 200)), [message_id], MemoryWindows()
    )

    closed_window_status(ledger, "wamid.I3")

    failed = ledger.get(message_id)
    assert (failed.state, failed.reason, failed.sent_as) == (State.FAILED, "window_closed", None)
