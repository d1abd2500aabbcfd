"""The ledger on a real database: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from wadispatch.errors import IllegalTransition, StaleState, UnknownMessage
from wadispatch.ledger import Change, Ledger, messages, transitions, utcnow
from wadispatch.messages import validate_send_request
from wadispatch.states import State

from tests.support import button_request

pytestmark = pytest.mark.integration


def transition_count(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(transitions)).scalar_one()


def new_message(ledger: Ledger, **overrides: object) -> str:
    message_id, created = ledger.record_pending(validate_send_request(button_request(**overrides)))
    assert created
    return message_id


def test_record_pending_writes_the_message_and_its_first_transition(ledger: Ledger) -> None:
    message_id = new_message(ledger)
    record = ledger.get(message_id)
    assert record.state is State.PENDING
    assert record.recipient == "+255712345678"
    assert record.attempts == 0
    assert record.request["interactive"]["body"]["text"] == "Did this resolve your issue?"
    assert record.created_at.tzinfo is not None
    [first] = ledger.transitions(message_id)
    assert (first.from_state, first.to_state, first.attempt) == (None, State.PENDING, 0)


def test_message_ids_grow_with_time_single_and_many(ledger: Ledger) -> None:
    """Time-ordered ids (UUIDv7) are appended at the id indexes' end instead of all over them."""
    single = [new_message(ledger, to=f"+25571234567{digit}") for digit in range(3)]
    requests = [validate_send_request(button_request(to=f"+25571234568{digit}")) for digit in range(3)]
    many = [message_id for message_id, _ in ledger.record_pending_many(requests)]
    ids = single + many
    assert [uuid.UUID(message_id).version for message_id in ids] == [7] * 6
    stamps = [uuid.UUID(message_id).int >> 80 for message_id in ids]
    assert stamps == sorted(stamps)


def test_idempotency_key_returns_the_first_id_and_writes_nothing(ledger: Ledger) -> None:
    first = new_message(ledger, idempotency_key="order-42")
    before = transition_count(ledger)
    again, created = ledger.record_pending(
        validate_send_request(button_request(idempotency_key="order-42", to="+255700000001"))
    )
    assert (again, created) == (first, False)
    assert transition_count(ledger) == before
    with ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 1


def test_concurrent_inserts_with_one_idempotency_key_make_one_message(ledger: Ledger) -> None:
    request = validate_send_request(button_request(idempotency_key="burst"))
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(8)

    def insert() -> None:
        barrier.wait()
        results.append(ledger.record_pending(request))

    threads = [threading.Thread(target=insert) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8
    assert len({message_id for message_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_claim_moves_pending_to_sending_and_counts_the_attempt(ledger: Ledger) -> None:
    message_id = new_message(ledger)
    record = ledger.claim(message_id)
    assert record is not None
    assert (record.state, record.attempts) == (State.SENDING, 1)
    assert ledger.claim(message_id) is None
    assert [t.to_state for t in ledger.transitions(message_id)] == [State.PENDING, State.SENDING]


def test_only_one_of_many_concurrent_claims_wins(ledger: Ledger) -> None:
    message_id = new_message(ledger)
    wins: list[bool] = []
    barrier = threading.Barrier(16)

    def claim() -> None:
        barrier.wait()
        wins.append(ledger.claim(message_id) is not None)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert wins.count(True) == 1 and len(wins) == 16
    assert ledger.get(message_id).attempts == 1


def test_a_message_not_yet_due_is_not_claimed(ledger: Ledger) -> None:
    message_id = new_message(ledger)
    ledger.claim(message_id)
    now = utcnow()
    ledger.transition(
        message_id,
        State.SENDING,
        State.PENDING,
        reason="rate_limited",
        next_attempt_at=now + timedelta(seconds=30),
        now=now,
    )
    assert ledger.claim(message_id, now=now + timedelta(seconds=10)) is None
    claimed = ledger.claim(message_id, now=now + timedelta(seconds=31))
    assert claimed is not None and claimed.attempts == 2


def test_illegal_transition_raises_and_writes_nothing(ledger: Ledger) -> None:
    message_id = new_message(ledger)
    before = transition_count(ledger)
    with pytest.raises(IllegalTransition):
        ledger.transition(message_id, State.PENDING, State.SENT)
    with pytest.raises(IllegalTransition):
        ledger.transition(message_id, State.PENDING, State.FAILED)  # no reason
    assert transition_count(ledger) == before
    assert ledger.get(message_id).state is State.PENDING


def test_stale_transition_raises_and_writes_nothing(ledger: Ledger) -> None:
    message_id = new_message(ledger)
    before = transition_count(ledger)
    with pytest.raises(StaleState, match="is pending, not sending"):
        ledger.transition(message_id, State.SENDING, State.SENT, provider_message_id="x")
    assert transition_count(ledger) == before
    assert ledger.get(message_id).provider_message_id is None


def test_transition_records_reason_detail_and_fields(ledger: Ledger) -> None:
    message_id = new_message(ledger)
    ledger.claim(message_id)
    ledger.transition(
        message_id,
        State.SENDING,
        State.FAILED,
        reason="window_closed",
        detail={"status_code": 400, "provider_code": "131047"},
        provider_error_code="131047",
        provider_error_message="Re-engagement message",
    )
    record = ledger.get(message_id)
    assert (record.state, record.reason, record.provider_error_code) == (
        State.FAILED,
        "window_closed",
        "131047",
    )
    last = ledger.transitions(message_id)[-1]
    assert (last.from_state, last.to_state, last.reason, last.attempt) == (
        State.SENDING,
        State.FAILED,
        "window_closed",
        1,
    )
    assert last.detail == {"status_code": 400, "provider_code": "131047"}


def test_unknown_message(ledger: Ledger) -> None:
    with pytest.raises(UnknownMessage):
        ledger.get("no-such-id")
    with pytest.raises(UnknownMessage):
        ledger.transition("no-such-id", State.PENDING, State.SENDING)


def test_transition_refuses_columns_it_does_not_own(ledger: Ledger) -> None:
    message_id = new_message(ledger)
    with pytest.raises(TypeError, match="cannot set"):
        ledger.transition(message_id, State.PENDING, State.SENDING, attempts=5)


def test_count_by_state(ledger: Ledger) -> None:
    first = new_message(ledger)
    new_message(ledger)
    ledger.claim(first)
    assert ledger.count_by_state() == {"pending": 1, "sending": 1}


def test_batches_are_looked_up_by_primary_key_not_by_scanning_their_state(tmp_path) -> None:
    """SQLite, without statistics, would pick the state or campaign index for ``id IN (...)``
    and scan every pending message to find a batch."""
    from sqlalchemy import event

    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    ids = [new_message(ledger) for _ in range(150)]
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement: str, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")) and " messages" in statement:
            statements.append((statement, parameters))

    event.listen(ledger.engine, "before_cursor_execute", capture)
    records = ledger.load_pending(ids[:100])
    ledger.claim_many(records)
    later = utcnow() + timedelta(hours=1)
    ledger.settle_stuck_sending(
        ids[:100], later, utcnow(), to_state=State.FAILED, reason="unknown_outcome", detail={}
    )
    ledger.requeue_never_requested(ids[:100], later, utcnow(), reason="worker_lost", detail={})
    ledger.touch_stale_pending(ids[100:], later, utcnow())
    event.remove(ledger.engine, "before_cursor_execute", capture)

    assert len(statements) >= 4
    with ledger.engine.connect() as conn:
        for statement, parameters in statements:
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            assert "(id=?)" in plan[0], (statement, plan)
    ledger.dispose()


def test_a_batch_with_a_stale_message_still_gives_back_the_attempt_of_one_held_back(ledger: Ledger) -> None:
    """One stale message sends the batch down the one-at-a-time path; a message the limiter only
    held back (no request made) must get its claim's attempt back there too."""
    stale, held_back = new_message(ledger), new_message(ledger, to="+255700000002")
    claimed = {record.id: record for record in ledger.claim_many(ledger.load_pending([stale, held_back]))}
    assert {record.attempts for record in claimed.values()} == {1}
    later = utcnow() + timedelta(seconds=30)
    # Another process moves the first one meanwhile (e.g. the reconciler put it back).
    ledger.transition(stale, State.SENDING, State.PENDING, next_attempt_at=later)

    result = ledger.apply_many(
        [
            Change(stale, State.SENDING, State.SENT, attempt=1, provider_message_id="wamid.1"),
            Change(
                held_back, State.SENDING, State.PENDING, attempt=1, next_attempt_at=later, request_made=False
            ),
        ]
    )

    assert result == [stale]
    assert ledger.get(held_back).attempts == 0  # no request reached the provider
    assert ledger.get(held_back).state is State.PENDING
    assert ledger.get(stale).state is State.PENDING and ledger.get(stale).provider_message_id is None
    assert [t.to_state for t in ledger.transitions(held_back)][-1] is State.PENDING


def test_a_batch_with_a_stale_message_applies_the_others_as_a_clean_batch_would(ledger: Ledger) -> None:
    ids = [new_message(ledger, to=f"+25570000001{n}") for n in range(3)]
    ledger.claim_many(ledger.load_pending(ids))
    ledger.transition(ids[0], State.SENDING, State.FAILED, reason="unknown_outcome")

    stale = ledger.apply_many(
        [
            Change(message_id, State.SENDING, State.SENT, attempt=1, provider_message_id=f"p-{message_id}")
            for message_id in ids
        ]
    )

    assert stale == [ids[0]]
    assert ledger.get(ids[0]).state is State.FAILED
    for message_id in ids[1:]:
        record = ledger.get(message_id)
        assert (record.state, record.provider_message_id, record.attempts) == (
            State.SENT,
            f"p-{message_id}",
            1,
        )
    assert transition_count(ledger) == 3 + 3 + 1 + 2  # pending, claims, the other process, the two sent
