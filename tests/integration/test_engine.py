"""Batch send attempts against a real ledger, with a scripted transport standing in for HTTP."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, update
from wadispatch import engine
from wadispatch.engine import BatchResult, retry_delay, send_batch
from wadispatch.later import Later, group_later
from wadispatch.ledger import Ledger, messages, utcnow
from wadispatch.ledger.schema import campaigns
from wadispatch.messages import validate_send_request
from wadispatch.providers import Outcome, ProviderAdapter, ProviderRequest
from wadispatch.ratelimit import Slot, Unlimited
from wadispatch.settings import Settings
from wadispatch.states import State
from wadispatch.transport import SendLoop

from tests.support import button_request, make_settings

pytestmark = pytest.mark.integration


class ScriptedTransport:
    """Answers each send with the next scripted outcome and remembers what it was asked."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = deque(outcomes)
        self.requests: list[ProviderRequest] = []

    async def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        self.requests.append(request)
        return self.outcomes.popleft()

    async def aclose(self) -> None:
        pass


class DeferringLimiter(Unlimited):
    """Grants the first ``grants`` takes at once and defers the rest, each told its own turn:
    ``wait``, then one ``spacing`` later for each deferred before it (as the shared limiter does)."""

    def __init__(self, grants: int, wait: float, spacing: float = 0.0125) -> None:
        self.grants, self.wait, self.spacing = grants, wait, spacing
        self.deferred = 0
        self.penalized: list[tuple[str, float | None]] = []

    def acquire_many(self, keys: list[tuple[str, str | None, str | None]]) -> list[Slot]:
        slots = []
        for _ in keys:
            if self.grants:
                self.grants -= 1
                slots.append(Slot(True, 0.0))
            else:
                slots.append(Slot(False, self.wait + self.deferred * self.spacing))
                self.deferred += 1
        return slots

    async def penalize(self, provider: str, sender: str | None, retry_after: float | None) -> float:
        self.penalized.append((provider, retry_after))
        return retry_after or 1.0


@pytest.fixture(scope="module")
def loop() -> Iterator[SendLoop]:
    send_loop = SendLoop(make_settings())
    yield send_loop
    send_loop.close()


def pending_messages(ledger: Ledger, count: int = 1, **overrides: object) -> list[str]:
    return [
        ledger.record_pending(validate_send_request(button_request(**overrides)))[0] for _ in range(count)
    ]


def attempt(
    ledger: Ledger,
    loop: SendLoop,
    transport: ScriptedTransport,
    settings: Settings,
    message_ids: list[str],
    limiter: Unlimited | None = None,
) -> BatchResult:
    loop.transport = transport  # type: ignore[assignment]
    return send_batch(
        message_ids,
        ledger=ledger,
        limiter=limiter or Unlimited(),
        loop=loop,
        settings=settings,
        rng=random.Random(7),
    )


def test_accepted_ends_sent_with_the_provider_id(ledger: Ledger, loop: SendLoop, settings: Settings) -> None:
    [message_id] = pending_messages(ledger)
    transport = ScriptedTransport(Outcome.accepted("wamid.1", 200))
    result = attempt(ledger, loop, transport, settings, [message_id])
    assert result.sent == [message_id]
    record = ledger.get(message_id)
    assert (record.state, record.provider_message_id, record.attempts) == (State.SENT, "wamid.1", 1)
    assert [t.to_state for t in ledger.transitions(message_id)] == [State.PENDING, State.SENDING, State.SENT]
    assert transport.requests[0].url.endswith("/1107264639145282/messages")


def test_a_batch_settles_each_message_by_its_own_outcome(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    ids = pending_messages(ledger, 3)
    transport = ScriptedTransport(
        Outcome.accepted("w1", 200),
        Outcome.permanent("opted_out", status_code=403, code="CONTACT_OPTED_OUT"),
        Outcome.transient("server_error", status_code=503),
    )
    result = attempt(ledger, loop, transport, settings, ids)
    assert result.sent == [ids[0]]
    assert result.failed == {ids[1]: "opted_out"}
    assert [(item.message_id, item.reason) for item in result.later] == [(ids[2], "retry")]
    assert [ledger.get(message_id).state for message_id in ids] == [State.SENT, State.FAILED, State.PENDING]
    assert result.summary() == "sent 1, failed 1 (opted_out 1), later 1 (retry 1)"


def test_permanent_ends_failed_with_reason_and_provider_error(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    [message_id] = pending_messages(ledger)
    outcome = Outcome.permanent("window_closed", status_code=400, code="131047", message="Re-engage")
    result = attempt(ledger, loop, ScriptedTransport(outcome), settings, [message_id])
    assert result.failed == {message_id: "window_closed"} and not result.later
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


def test_rate_limited_goes_back_to_pending_and_tells_the_limiter(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    [message_id] = pending_messages(ledger)
    limiter = DeferringLimiter(grants=10, wait=0)
    transport = ScriptedTransport(Outcome.rate_limited(2.0, status_code=429))
    result = attempt(ledger, loop, transport, settings, [message_id], limiter)
    [later] = result.later
    assert later.reason == "retry" and 2.0 <= later.delay <= 3.0
    assert "rate_limited, HTTP 429" in later.description
    assert limiter.penalized == [("meta", 2.0)]
    record = ledger.get(message_id)
    assert record.state is State.PENDING and record.reason == "rate_limited"
    assert record.next_attempt_at is not None and record.next_attempt_at - utcnow() > timedelta(seconds=1)


class CoolingLimiter(Unlimited):
    """Every sender is cooling down for another ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def cooldown_left(self, provider: str, sender: str | None) -> float:
        return self.seconds


def test_a_sender_cooling_down_is_held_back_without_a_request(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    [message_id] = pending_messages(ledger)
    transport = ScriptedTransport()
    result = attempt(ledger, loop, transport, settings, [message_id], CoolingLimiter(3.0))
    [later] = result.later
    assert later.reason == "retry" and 3.0 <= later.delay <= 4.0
    assert "code throttled" in later.description
    assert transport.requests == []
    record = ledger.get(message_id)
    assert (record.state, record.attempts) == (State.PENDING, 0)  # no request: the attempt is given back


def test_a_retried_message_is_not_claimed_before_it_is_due(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    [message_id] = pending_messages(ledger)
    transport = ScriptedTransport(Outcome.rate_limited(30.0, status_code=429))
    attempt(ledger, loop, transport, settings, [message_id])
    early = attempt(ledger, loop, transport, settings, [message_id])
    [later] = early.later
    assert later.reason == "not_due" and 28 < later.delay <= 31
    assert len(transport.requests) == 1


def test_messages_without_a_slot_are_deferred_unclaimed_and_spread(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    ids = pending_messages(ledger, 4)
    transport = ScriptedTransport(Outcome.accepted("a", 200), Outcome.accepted("b", 200))
    result = attempt(ledger, loop, transport, settings, ids, DeferringLimiter(grants=2, wait=0.5))
    assert result.sent == ids[:2]
    deferred = [item for item in result.later if item.reason == "deferred"]
    assert [item.message_id for item in deferred] == ids[2:]
    # Each comes back at the turn the limiter told it, no later.
    assert [item.delay for item in deferred] == [pytest.approx(0.5), pytest.approx(0.5125)]
    for message_id in ids[2:]:
        record = ledger.get(message_id)
        assert (record.state, record.attempts) == (State.PENDING, 0)  # no attempt used


def test_transient_then_accepted_ends_sent_after_two_attempts(ledger: Ledger, loop: SendLoop) -> None:
    settings = make_settings(backoff_base_seconds=0.001, backoff_cap_seconds=0.001)
    [message_id] = pending_messages(ledger)
    transport = ScriptedTransport(
        Outcome.transient("server_error", status_code=503), Outcome.accepted("w2", 200)
    )
    assert attempt(ledger, loop, transport, settings, [message_id]).later
    time.sleep(0.01)  # past the (at most 1 ms) backoff
    assert attempt(ledger, loop, transport, settings, [message_id]).sent == [message_id]
    history = [(t.from_state, t.to_state, t.attempt, t.reason) for t in ledger.transitions(message_id)]
    assert history == [
        (None, State.PENDING, 0, None),
        (State.PENDING, State.SENDING, 1, None),
        (State.SENDING, State.PENDING, 1, "server_error"),
        (State.PENDING, State.SENDING, 2, None),
        (State.SENDING, State.SENT, 2, None),
    ]
    assert ledger.get(message_id).provider_error_code is None  # cleared once sent


def test_retries_stop_at_max_attempts(ledger: Ledger, loop: SendLoop) -> None:
    settings = make_settings(max_attempts=1)
    [message_id] = pending_messages(ledger)
    result = attempt(ledger, loop, ScriptedTransport(Outcome.transient("timeout")), settings, [message_id])
    assert result.failed == {message_id: "provider_unavailable"}
    assert ledger.transitions(message_id)[-1].detail["gave_up"] == "attempts"


def test_retries_stop_when_the_wait_outlives_the_message(ledger: Ledger, loop: SendLoop) -> None:
    settings = make_settings(max_age_seconds=10)
    [message_id] = pending_messages(ledger)
    transport = ScriptedTransport(Outcome.rate_limited(60.0, status_code=429))
    assert attempt(ledger, loop, transport, settings, [message_id]).failed == {message_id: "expired"}


def test_missing_configuration_fails_with_reason_config_and_no_request(
    ledger: Ledger, loop: SendLoop
) -> None:
    settings = make_settings(wacr_base_url=None)
    [message_id] = pending_messages(ledger, provider="wacr")
    transport = ScriptedTransport()
    assert attempt(ledger, loop, transport, settings, [message_id]).failed == {message_id: "config"}
    record = ledger.get(message_id)
    assert record.provider_error_message == "WADISPATCH_WACR_BASE_URL is not set (WA.cr names no host)"
    assert transport.requests == []


def test_settled_messages_are_skipped_and_unknown_ids_told_apart(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    [message_id] = pending_messages(ledger)
    transport = ScriptedTransport(Outcome.accepted("w", 200))
    attempt(ledger, loop, transport, settings, [message_id])
    result = attempt(ledger, loop, transport, settings, [message_id, "no-such-message"])
    assert (result.skipped, result.unknown) == ([message_id], ["no-such-message"])
    assert len(transport.requests) == 1


class WatchingTransport:
    """Looks at the ledger as each request arrives. Answers the first request at once and holds
    the second until the ledger shows the first one ``sent`` (or 5 s pass)."""

    def __init__(self, ledger: Ledger, ids_by_recipient: dict[str, str]) -> None:
        self.ledger, self.ids_by_recipient = ledger, ids_by_recipient
        self.marked_when_requested: dict[str, bool] = {}
        self.first_sent_while_batch_in_flight = False

    async def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        message_id = self.ids_by_recipient[json.loads(request.body)["to"]]
        record = self.ledger.get(message_id)
        self.marked_when_requested[message_id] = record.requested_at is not None
        if len(self.marked_when_requested) == 1:
            return Outcome.accepted(f"w-{message_id}", 200)
        first = next(iter(self.marked_when_requested))
        for _ in range(100):
            if self.ledger.get(first).state is State.SENT:
                self.first_sent_while_batch_in_flight = True
                break
            await asyncio.sleep(0.05)
        return Outcome.accepted(f"w-{message_id}", 200)

    async def aclose(self) -> None:
        pass


def test_each_request_is_marked_before_it_leaves_and_each_answer_recorded_as_it_arrives(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    recipients = ["+255712000001", "+255712000002"]
    ids = [pending_messages(ledger, to=recipient)[0] for recipient in recipients]
    transport = WatchingTransport(ledger, dict(zip([r.lstrip("+") for r in recipients], ids, strict=True)))
    result = attempt(ledger, loop, transport, settings, ids)  # type: ignore[arg-type]
    assert sorted(result.sent) == sorted(ids)
    assert transport.marked_when_requested == {message_id: True for message_id in ids}
    assert transport.first_sent_while_batch_in_flight
    for message_id in ids:
        record = ledger.get(message_id)
        assert record.requested_at is not None and record.requested_at <= record.updated_at


def test_marks_and_answers_of_concurrent_sends_share_their_writes(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    ids = pending_messages(ledger, 50)
    statements: list[str] = []

    def count(conn, cursor, statement: str, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("UPDATE MESSAGES"):
            statements.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", count)
    try:
        transport = ScriptedTransport(*(Outcome.accepted(f"w{index}", 200) for index in range(50)))
        result = attempt(ledger, loop, transport, settings, ids)
    finally:
        event.remove(ledger.engine, "before_cursor_execute", count)
    assert sorted(result.sent) == sorted(ids)
    marks = [
        statement for statement in statements if statement.startswith("UPDATE messages SET requested_at")
    ]
    others = [statement for statement in statements if statement not in marks]
    # One claim, then the marks and the answers in a few flushes, not one write per message.
    assert 1 <= len(marks) <= 5
    assert 2 <= len(others) <= 1 + 5


def test_a_stored_message_todays_rules_refuse_fails_alone_and_its_batch_is_sent(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    ids = pending_messages(ledger, 3)
    stored = ledger.get(ids[1]).request
    stored["interactive"]["action"]["buttons"][0]["reply"]["id"] = "yes "  # accepted by older rules
    with ledger.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == ids[1]).values(request=stored))
    transport = ScriptedTransport(Outcome.accepted("w1", 200), Outcome.accepted("w3", 200))
    result = attempt(ledger, loop, transport, settings, ids)
    assert sorted(result.sent) == sorted([ids[0], ids[2]])
    assert result.failed == {ids[1]: "invalid"}
    assert len(transport.requests) == 2


def test_a_claim_taken_back_before_its_slot_is_not_sent(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    [message_id] = pending_messages(ledger)

    class TakeBackOnWait(Unlimited):
        """While the claimed message waits for its cooldown check, the reconciler takes it back."""

        async def cooldown_left(self, provider: str, sender: str | None) -> float:
            ledger.requeue_never_requested(
                [message_id], utcnow() + timedelta(hours=1), utcnow(), reason="worker_lost", detail={}
            )
            return 0.0

    transport = ScriptedTransport(Outcome.accepted("w", 200))
    result = attempt(ledger, loop, transport, settings, [message_id], limiter=TakeBackOnWait())
    assert (result.skipped, transport.requests) == ([message_id], [])
    record = ledger.get(message_id)
    assert (record.state, record.attempts, record.requested_at) == (State.PENDING, 0, None)


def test_a_failure_before_the_request_left_gives_the_attempt_back(
    ledger: Ledger, loop: SendLoop, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    [message_id] = pending_messages(ledger)

    async def limiter_lost(*args: object) -> None:
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(engine, "_wait_for_slot", limiter_lost)
    transport = ScriptedTransport(Outcome.accepted("w", 200))
    result = attempt(ledger, loop, transport, settings, [message_id])
    assert ([item.message_id for item in result.later], transport.requests) == ([message_id], [])
    record = ledger.get(message_id)
    assert (record.state, record.attempts, record.reason) == (State.PENDING, 0, "internal_error")


def test_ledger_never_holds_the_credentials(ledger: Ledger, loop: SendLoop, settings: Settings) -> None:
    [message_id] = pending_messages(ledger)
    attempt(
        ledger, loop, ScriptedTransport(Outcome.permanent("auth", status_code=401)), settings, [message_id]
    )
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


def test_group_later_never_brings_a_retry_back_early() -> None:
    later = [Later(f"m{i}", delay, "retry", "") for i, delay in enumerate([0.1, 0.4, 0.6, 2.0, 2.2, 2.3])]
    jobs = group_later(later, max_ids=2)
    assert jobs == [(0.4, ["m0", "m1"]), (0.6, ["m2"]), (2.2, ["m3", "m4"]), (2.3, ["m5"])]


def test_group_later_brings_deferred_messages_back_ahead_of_their_slots() -> None:
    later = [
        Later("d0", 1.1, "deferred", ""),
        Later("d1", 1.3, "deferred", ""),
        Later("r0", 1.2, "retry", ""),
        Later("d2", 3.2, "deferred", ""),
    ]
    jobs = {tuple(ids): countdown for countdown, ids in group_later(later, max_ids=10)}
    assert jobs == pytest.approx({("d0", "d1"): 0.6, ("r0",): 1.2, ("d2",): 2.7})


def test_a_campaign_batch_names_its_campaign_in_its_result(
    ledger: Ledger, loop: SendLoop, settings: Settings
) -> None:
    ids = pending_messages(ledger, to="+255712345001") + pending_messages(ledger, to="+255712345002")
    now = datetime.now(UTC)
    with ledger.engine.begin() as conn:
        conn.execute(
            insert(campaigns).values(
                id="c-flower",
                name="order-ready",
                provider="meta",
                template={},
                status="running",
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(update(messages).where(messages.c.id.in_(ids)).values(campaign_id="c-flower"))
    transport = ScriptedTransport(
        Outcome.accepted("w1", 200), Outcome.permanent("window_closed", status_code=400, code="131047")
    )
    result = attempt(ledger, loop, transport, settings, ids)
    assert result.campaigns == ["c-flower"]
    # What Flower shows, and finds with its search (result:c-flower, result:failed).
    assert result.summary() == "campaign c-flower: sent 1, failed 1 (window_closed 1)"


class BookedLimiter(Unlimited):
    """Grants a paced slot, and has no fresh slot nearer than ``booked`` seconds."""

    def __init__(self, booked: float) -> None:
        self.booked = booked
        self.fresh_max_waits: list[float | None] = []

    def acquire_many(self, keys: list[tuple[str, str | None, str | None]]) -> list[Slot]:
        return [Slot(True, 0.02) for _ in keys]

    async def cooldown_left(self, provider: str, sender: str | None) -> float:
        await asyncio.sleep(0.05)  # a busy loop: the message is surely late for its slot
        return 0.0

    async def acquire(
        self, provider: str, sender: str | None, recipient: str | None, *, max_wait: float | None = None
    ) -> Slot:
        self.fresh_max_waits.append(max_wait)
        granted = max_wait is not None and self.booked <= max_wait
        return Slot(granted, self.booked)


def test_a_late_message_does_not_wait_long_for_a_fresh_slot(ledger: Ledger, loop: SendLoop) -> None:
    # The message wakes up late (a busy loop) and asks for a fresh slot; the sender's next
    # 5 s are booked. It is not held (with its job) for them: it comes back then, unsent.
    settings = make_settings(limiter_lateness_seconds=0.01, limiter_max_wait_seconds=10.0)
    [message_id] = pending_messages(ledger)
    limiter = BookedLimiter(booked=5.0)
    transport = ScriptedTransport(Outcome.accepted("w", 200))
    started = time.monotonic()
    result = attempt(ledger, loop, transport, settings, [message_id], limiter)
    assert time.monotonic() - started < 2.0
    assert limiter.fresh_max_waits == [1.0]
    [later] = result.later
    assert later.reason == "retry" and 5.0 <= later.delay <= 6.0
    assert transport.requests == []
    record = ledger.get(message_id)
    assert (record.state, record.attempts) == (State.PENDING, 0)  # no request: the attempt is given back


class PacedLimiter(Unlimited):
    """Grants every take ``wait`` seconds ahead (a paced sender), fresh slots included."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.fresh: list[float] = []

    def acquire_many(self, keys: list[tuple[str, str | None, str | None]]) -> list[Slot]:
        return [Slot(True, self.wait) for _ in keys]

    async def acquire(
        self, provider: str, sender: str | None, recipient: str | None, *, max_wait: float | None = None
    ) -> Slot:
        self.fresh.append(time.monotonic())
        return Slot(True, self.wait)


class TimedTransport(ScriptedTransport):
    """Remembers when each request left (the event loop's clock is ``time.monotonic``)."""

    def __init__(self, *outcomes: Outcome) -> None:
        super().__init__(*outcomes)
        self.sent_at: list[float] = []

    async def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        self.sent_at.append(time.monotonic())
        return await super().send(request, adapter)


def slow_marks(ledger: Ledger, monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[float]:
    """Make every write of marks take ``seconds``; return when each such write began."""
    began: list[float] = []
    record_progress = ledger.record_progress

    def slowly(claims, changes, **kwargs):  # type: ignore[no-untyped-def]
        if claims:
            began.append(time.monotonic())
            time.sleep(seconds)
        return record_progress(claims, changes, **kwargs)

    monkeypatch.setattr(ledger, "record_progress", slowly)
    return began


def test_a_paced_message_is_marked_ahead_of_its_slot_and_leaves_on_it(
    ledger: Ledger, loop: SendLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Marks take 60 ms to write; marked 150 ms ahead, the request still leaves on its slot.
    settings = make_settings(mark_lead_seconds=0.15, limiter_lateness_seconds=0.015)
    [message_id] = pending_messages(ledger)
    marks = slow_marks(ledger, monkeypatch, 0.06)
    limiter = PacedLimiter(wait=0.3)
    transport = TimedTransport(Outcome.accepted("w", 200))
    started = time.monotonic()
    result = attempt(ledger, loop, transport, settings, [message_id], limiter)
    assert result.sent == [message_id]
    assert limiter.fresh == []  # on time: no fresh slot
    [sent_at] = transport.sent_at
    assert 0.3 <= sent_at - started < 0.3 + 0.1
    assert marks and sent_at - marks[0] >= 0.1  # the mark was written well before the request left


def test_a_paced_message_whose_mark_made_it_late_takes_a_fresh_slot(
    ledger: Ledger, loop: SendLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Marked 10 ms ahead, a 100 ms write makes the message 90 ms late: it does not go out bunched
    # with the next one but waits for a fresh slot, without being marked again.
    settings = make_settings(mark_lead_seconds=0.01, limiter_lateness_seconds=0.015)
    [message_id] = pending_messages(ledger)
    marks = slow_marks(ledger, monkeypatch, 0.1)
    limiter = PacedLimiter(wait=0.2)
    transport = TimedTransport(Outcome.accepted("w", 200))
    result = attempt(ledger, loop, transport, settings, [message_id], limiter)
    assert result.sent == [message_id]
    [fresh_at] = limiter.fresh
    [sent_at] = transport.sent_at
    assert sent_at - fresh_at >= 0.2 - 0.01  # it waited for the fresh slot
    assert len(marks) == 1
    assert ledger.get(message_id).attempts == 1
