"""The engine and the 24-hour window, with a scripted transport and an in-memory window store:
closed pairs fail before any request, a provider's window error closes its pair once, and a window
store that fails never stops a send."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

import pytest
from wadispatch.engine import send_batch
from wadispatch.ledger import Ledger
from wadispatch.providers import Outcome
from wadispatch.ratelimit import Unlimited
from wadispatch.settings import Settings
from wadispatch.states import State
from wadispatch.transport import SendLoop
from wadispatch.window import Pair

from tests.integration.test_engine import ScriptedTransport, pending_messages
from tests.support import make_settings

pytestmark = pytest.mark.integration


class MemoryWindows:
    """A window store in a dict; counts its lookups (each is one round trip in Redis)."""

    def __init__(self, closed: Iterable[Pair] = (), *, broken: bool = False) -> None:
        self.states = {pair: "closed" for pair in closed}
        self.broken = broken
        self.lookups = 0
        self.closed_calls: list[list[Pair]] = []

    def closed_among(self, pairs: list[Pair]) -> list[bool]:
        self.lookups += 1
        if self.broken:
            raise ConnectionError("redis is down")
        return [self.states.get(pair) == "closed" for pair in pairs]

    def open(self, pairs: Iterable[Pair]) -> None:
        self.states.update(dict.fromkeys(pairs, "open"))

    def close(self, pairs: Iterable[Pair]) -> None:
        pairs = list(pairs)
        self.closed_calls.append(pairs)
        self.states.update(dict.fromkeys(pairs, "closed"))


@pytest.fixture(scope="module")
def loop() -> Iterator[SendLoop]:
    send_loop = SendLoop(make_settings())
    yield send_loop
    send_loop.close()


CLOSED: Pair = ("meta", "1107264639145282", "+255700000999")


def attempt(
    ledger: Ledger, loop: SendLoop, transport: ScriptedTransport, ids: list[str], windows: MemoryWindows
):
    loop.transport = transport  # type: ignore[assignment]
    settings: Settings = make_settings()
    return send_batch(
        ids,
        ledger=ledger,
        limiter=Unlimited(),
        loop=loop,
        settings=settings,
        rng=random.Random(1),
        windows=windows,
    )


def test_a_batch_fails_its_closed_pairs_without_requests_in_one_lookup(
    ledger: Ledger, loop: SendLoop
) -> None:
    closed = pending_messages(ledger, 3, to=CLOSED[2])
    open_ = pending_messages(ledger, 2)
    windows = MemoryWindows([CLOSED])
    transport = ScriptedTransport(Outcome.accepted("w1", 200), Outcome.accepted("w2", 200))
    result = attempt(ledger, loop, transport, closed + open_, windows)
    assert windows.lookups == 1
    assert len(transport.requests) == 2 and sorted(result.sent) == sorted(open_)
    assert result.failed == dict.fromkeys(closed, "window_closed")
    assert [record.id for record in result.closed_windows] == closed
    assert windows.closed_calls == []  # known closed already: nothing to write
    for message_id in closed:
        record = ledger.get(message_id)
        assert (record.state, record.reason, record.attempts) == (State.FAILED, "window_closed", 0)
    assert "failed 3 (window_closed 3)" in result.summary()


def test_a_provider_window_error_closes_the_pair_and_is_not_retried(ledger: Ledger, loop: SendLoop) -> None:
    [message_id] = pending_messages(ledger, to=CLOSED[2])
    windows = MemoryWindows()
    transport = ScriptedTransport(Outcome.permanent("window_closed", status_code=400, code="131047"))
    result = attempt(ledger, loop, transport, [message_id], windows)
    assert result.failed == {message_id: "window_closed"} and result.later == []
    assert windows.closed_calls == [[CLOSED]]
    record = ledger.get(message_id)
    assert (record.state, record.attempts, record.provider_error_code) == (State.FAILED, 1, "131047")


def test_a_failing_window_store_never_stops_a_send(ledger: Ledger, loop: SendLoop) -> None:
    [message_id] = pending_messages(ledger, to=CLOSED[2])
    windows = MemoryWindows([CLOSED], broken=True)
    result = attempt(ledger, loop, ScriptedTransport(Outcome.accepted("w1", 200)), [message_id], windows)
    assert result.sent == [message_id]
