"""Property: Meta status webhooks in any order, duplicated, interleaved with the sends they name.

Hypothesis builds Meta webhook bodies from the documented status fields (``id``, ``status``,
``timestamp``, ``recipient_id``, ``errors``), several statuses to a body, bodies repeated, and
mixes them with the moments the worker records each send (the provider id becomes known). Whatever
the order: every message ends in the state its statuses lead to through the state machine, in the
order they arrived (never backwards), and every event is applied exactly once, or kept until its
send is recorded and applied then. Run on a real ledger (SQLite; PostgreSQL too when
``TEST_DATABASE_URL`` is set).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from wadispatch.inbox import apply_events
from wadispatch.ledger import Change, Ledger, webhook_events
from wadispatch.ledger.schema import early_events
from wadispatch.messages import validate_send_request
from wadispatch.states import ALLOWED, State
from wadispatch.webhooks import parse

from tests.support import button_request, make_settings

pytestmark = pytest.mark.integration

SENDER = "1107264639145282"
STATUSES = ("sent", "delivered", "read", "failed")


class NoWindows:
    """The 24-hour window is not what this property is about (no status here closes one)."""

    def open_at(self, openings: Any, *, now: float | None = None) -> None: ...

    def close(self, pairs: Any) -> None: ...

    def move(self, moves: Any) -> None: ...


def meta_body(statuses: list[tuple[int, str]], run: str) -> bytes:
    """A Meta webhook body with these (message index, status) entries, as Meta documents them."""
    entries = []
    for index, status in statuses:
        entry: dict[str, Any] = {
            "id": f"wamid.{run}-{index}",
            "status": status,
            "timestamp": "1767225602",
            "recipient_id": "255712345678",
        }
        if status == "failed":
            entry["errors"] = [
                {
                    "code": 131026,
                    "title": "Message undeliverable",
                    "message": "Message undeliverable",
                    "error_data": {"details": "Message could not be delivered to the recipient."},
                }
            ]
        entries.append(entry)
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "209004301650633",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550077898", "phone_number_id": SENDER},
                            "statuses": entries,
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode()


MESSAGES = 3
statuses = st.tuples(st.integers(0, MESSAGES - 1), st.sampled_from(STATUSES))
bodies = st.lists(st.lists(statuses, min_size=1, max_size=4), min_size=1, max_size=8)


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Webhook bodies (some delivered twice) interleaved with the recording of each send."""
    drawn = draw(bodies)
    steps: list[tuple[str, Any]] = [("webhook", body) for body in drawn]
    steps += [("webhook", body) for body in draw(st.lists(st.sampled_from(drawn), max_size=3))]
    steps += [("send", index) for index in range(MESSAGES)]
    return draw(st.permutations(steps))


def expected_state(arrived: list[str]) -> State:
    """``sent``, then each status in the order it first arrived, where the state machine allows."""
    state = State.SENT
    for status in dict.fromkeys(arrived):  # a repeated status is the same event: applied once
        if State(status) in ALLOWED[state]:
            state = State(status)
    return state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=scripts())
def test_any_order_of_statuses_and_sends_ends_where_the_statuses_lead(
    ledger: Ledger, script: list[tuple[str, Any]]
) -> None:
    run = uuid.uuid4().hex[:12]  # the fixture's ledger is shared by the examples
    requests = [validate_send_request(button_request("meta", sender=SENDER)) for _ in range(MESSAGES)]
    ids = [message_id for message_id, _ in ledger.record_pending_many(requests)]
    claimed = {record.id: record for record in ledger.claim_many(ledger.load_pending(ids))}
    arrived: dict[int, list[str]] = {index: [] for index in range(MESSAGES)}
    counts: Counter[str] = Counter()
    for kind, item in script:
        if kind == "send":
            record = claimed[ids[item]]
            sent = Change(
                message_id=record.id,
                from_state=State.SENDING,
                to_state=State.SENT,
                attempt=record.attempts,
                provider_message_id=f"wamid.{run}-{item}",
            )
            assert ledger.record_progress([], [sent]).stale == set()
        else:
            events = parse("meta", meta_body(item, run))
            result = apply_events(events, ledger=ledger, windows=NoWindows(), settings=make_settings())  # type: ignore[arg-type]
            counts.update(result.counts)
            for index, status in item:
                arrived[index].append(status)

    for index, message_id in enumerate(ids):
        record = ledger.get(message_id)
        assert record.state is expected_state(arrived[index]), (arrived[index], record.state)
        moves = Counter(t.to_state for t in ledger.transitions(message_id))
        assert all(count == 1 for count in moves.values()), moves  # nothing applied twice
    # Every distinct event recorded once; none left waiting once every send is recorded.
    distinct = {(index, status) for _, item in script if _ == "webhook" for index, status in item}
    with ledger.engine.connect() as conn:
        recorded = conn.execute(
            select(func.count()).select_from(webhook_events).where(webhook_events.c.event_key.contains(run))
        ).scalar_one()
        kept = conn.execute(
            select(func.count()).select_from(early_events).where(early_events.c.event_key.contains(run))
        ).scalar_one()
    assert (recorded, kept) == (len(distinct), 0)
    assert counts["duplicates"] == sum(len(item) for k, item in script if k == "webhook") - len(distinct)
