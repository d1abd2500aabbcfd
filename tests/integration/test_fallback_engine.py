"""The fallback template in the engine, with a scripted transport and an in-memory window store:
a window known closed sends the template without asking for the interactive message; a refusal
for a closed window sends the template in the next attempt; a template is sent at most once."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from wadispatch.engine import BatchResult, send_batch
from wadispatch.ledger import Ledger
from wadispatch.messages import validate_send_request
from wadispatch.providers import Outcome, ProviderAdapter, ProviderRequest
from wadispatch.ratelimit import Unlimited
from wadispatch.states import State
from wadispatch.transport import SendLoop

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
