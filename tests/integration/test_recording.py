"""The recorder on a real ledger: one bad write fails alone; an unreachable database is waited for
a bounded time counted from when each flush was queued."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError
from wadispatch.ledger import Change, Ledger
from wadispatch.messages import validate_send_request
from wadispatch.recording import NotRecorded, Recorder
from wadispatch.states import State
from wadispatch.transport import SendLoop

from tests.support import button_request, make_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loop() -> Iterator[SendLoop]:
    send_loop = SendLoop(make_settings())
    yield send_loop
    send_loop.close()


def sent(record_id: str, attempt: int, to_state: State = State.SENT) -> Change:
    return Change(
        message_id=record_id,
        from_state=State.SENDING,
        to_state=to_state,
        attempt=attempt,
        provider_message_id="w",
    )


def test_one_refused_write_fails_alone_not_the_sends_that_shared_its_flush(
    ledger: Ledger, loop: SendLoop
) -> None:
    requests = [validate_send_request(button_request()) for _ in range(2)]
    ids = [message_id for message_id, _ in ledger.record_pending_many(requests)]
    good, bad = ledger.claim_many(ledger.load_pending(ids))
    recorder = Recorder(ledger, loop.loop, interval=0.05, retry_seconds=1.0)

    async def both() -> list[object]:
        # SENDING → READ is not a move the state machine allows: the whole flush is refused.
        return await asyncio.gather(
            recorder.settle(sent(good.id, good.attempts)),
            recorder.settle(sent(bad.id, bad.attempts, State.READ)),
            return_exceptions=True,
        )

    try:
        settled, refused = loop.run(both())
    finally:
        recorder.close()
    assert settled.applied and isinstance(refused, NotRecorded)  # type: ignore[union-attr]
    assert (ledger.get(good.id).state, ledger.get(bad.id).state) == (State.SENT, State.SENDING)


class Unreachable:
    """A ledger whose database does not answer."""

    def record_progress(self, *args: object, **kwargs: object) -> None:
        time.sleep(0.02)
        raise OperationalError("COMMIT", {}, ConnectionRefusedError("connection refused"))


def test_flushes_queued_behind_an_unreachable_database_give_up_within_the_retry_time(loop: SendLoop) -> None:
    recorder = Recorder(Unreachable(), loop.loop, interval=0.01, retry_seconds=0.6)  # type: ignore[arg-type]

    async def five_flushes() -> list[float]:
        async def one(index: int) -> float:
            await asyncio.sleep(index * 0.05)  # each in a flush of its own
            queued = time.monotonic()
            with pytest.raises(OperationalError):
                await recorder.settle(sent(f"m{index}", 1))
            return time.monotonic() - queued

        return await asyncio.gather(*(one(index) for index in range(5)))

    try:
        waited = loop.run(five_flushes())
    finally:
        recorder.close()
    # Counted per flush from when it started on the writing thread, the last would wait ~5 x 0.6 s.
    assert max(waited) < 0.6 + 1.0, waited
