"""The prune on a real ledger (SQLite always, PostgreSQL when TEST_DATABASE_URL is set): exactly
what is past its retention goes, in batches, and nothing else; ``wadispatch prune`` says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, update
from wadispatch.ledger import (
    DeadLetter,
    Ledger,
    PruneKind,
    campaign_row_errors,
    campaigns,
    dead_letters,
    messages,
    transitions,
    utcnow,
    webhook_events,
)
from wadispatch.messages import validate_send_request
from wadispatch.prune import prune
from wadispatch.states import State
from wadispatch.webhooks.events import MessageRef

from tests.support import button_request, make_settings

pytestmark = pytest.mark.integration

WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))
RETENTION = {
    "prune_webhook_events_after_days": 14,
    "prune_transitions_after_days": 30,
    "prune_dead_letters_after_days": 30,
    "prune_campaign_errors_after_days": 30,
}
TABLES = {
    PruneKind.WEBHOOK_EVENTS: webhook_events,
    PruneKind.TRANSITIONS: transitions,
    PruneKind.DEAD_LETTERS: dead_letters,
    PruneKind.CAMPAIGN_ERRORS: campaign_row_errors,
}


@dataclass
class Built:
    """A ledger's rows of every kind, old and recent, and which of them a prune must delete."""

    now: datetime
    settled_old: list[str] = field(default_factory=list)
    kept_messages: list[str] = field(default_factory=list)
    old_events: list[str] = field(default_factory=list)
    recent_events: list[str] = field(default_factory=list)
    letters_to_go: list[int] = field(default_factory=list)
    letters_kept: list[int] = field(default_factory=list)
    campaigns_to_go: list[str] = field(default_factory=list)
    campaigns_kept: list[str] = field(default_factory=list)
    expected: dict[PruneKind, int] = field(default_factory=dict)


def new_messages(ledger: Ledger, count: int, at: datetime) -> list[str]:
    requests = [validate_send_request(button_request()) for _ in range(count)]
    return [message_id for message_id, _ in ledger.record_pending_many(requests, now=at)]


def claimed(ledger: Ledger, count: int, at: datetime) -> list[str]:
    ids = new_messages(ledger, count, at)
    assert len(ledger.claim_many(ledger.load_pending(ids), now=at)) == count
    return ids


def build(ledger: Ledger, now: datetime) -> Built:
    """Old and recent rows of every kind; ``expected``: how many of each a prune deletes."""
    built = Built(now)
    old, recent = now - timedelta(days=40), now - timedelta(days=1)

    # Messages: settled long ago (3 transitions each go), and every kind that keeps its transitions.
    for message_id in claimed(ledger, 7, old):
        ledger.transition(message_id, State.SENDING, State.SENT, now=old, provider_message_id=message_id)
        built.settled_old.append(message_id)
    for message_id in claimed(ledger, 2, old):
        ledger.transition(message_id, State.SENDING, State.FAILED, reason="permanent", now=old)
        built.settled_old.append(message_id)
    settled_lately = claimed(ledger, 2, old)  # created long ago, settled yesterday
    for message_id in settled_lately:
        ledger.transition(message_id, State.SENDING, State.SENT, now=recent)
    delivered_lately = claimed(ledger, 1, old)  # sent long ago, delivered yesterday
    ledger.transition(delivered_lately[0], State.SENDING, State.SENT, now=old)
    ledger.transition(delivered_lately[0], State.SENT, State.DELIVERED, now=recent)
    pending_old = new_messages(ledger, 3, old)  # never sent: not settled, however old
    sending_old = claimed(ledger, 2, old)
    built.kept_messages = settled_lately + delivered_lately + pending_old + sending_old
    built.expected[PruneKind.TRANSITIONS] = 3 * len(built.settled_old)

    # Webhook events: old keys go; recent ones (and one just inside the retention) stay.
    for number in range(8):
        key = f"old-{number}"
        ledger.apply_webhook_reply("meta", key, MessageRef(), reply_id="yes", reply_title="Yes", now=old)
        built.old_events.append(key)
    inside = now - timedelta(days=13, hours=23)
    for key, at in (("recent-0", recent), ("recent-1", now), ("inside-retention", inside)):
        ledger.apply_webhook_reply("meta", key, MessageRef(), reply_id="no", reply_title="No", now=at)
        built.recent_events.append(key)
    ledger.apply_webhook_reply("bird", "old-bird", MessageRef(), reply_id="no", reply_title="No", now=old)
    built.old_events.append("old-bird")
    built.expected[PruneKind.WEBHOOK_EVENTS] = len(built.old_events)

    # Dead letters: replayed long ago go; replayed lately, or never replayed however old, stay.
    def letter(replayed_at: datetime | None) -> int:
        letter_id = ledger.record_dead_letter(DeadLetter(reason="unknown_task", body="{}"), now=old)
        if replayed_at is not None:
            assert ledger.mark_dead_letter_replayed(letter_id, now=replayed_at)
        return letter_id

    built.letters_to_go = [letter(old) for _ in range(5)]
    built.letters_kept = [letter(recent), letter(None), letter(None)]
    built.expected[PruneKind.DEAD_LETTERS] = len(built.letters_to_go)

    # Campaigns' skipped rows: those of campaigns ended long ago go.
    ended_long_ago = [
        campaign(ledger, "done", old, errors=3),
        campaign(ledger, "cancelled", old, errors=2, finished_reading=False),
        campaign(ledger, "running", old, errors=2),  # all read and all settled: ended, not marked done
    ]
    with_pending = campaign(ledger, "running", old, errors=2)
    [waiting] = new_messages(ledger, 1, old)
    with ledger.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == waiting).values(campaign_id=with_pending))
    built.kept_messages.append(waiting)
    built.campaigns_to_go = ended_long_ago
    built.campaigns_kept = [
        campaign(ledger, "done", recent, errors=2),
        campaign(ledger, "paused", old, errors=2),
        campaign(ledger, "running", old, errors=2, finished_reading=False),
        with_pending,
    ]
    built.expected[PruneKind.CAMPAIGN_ERRORS] = 7
    return built


def campaign(ledger: Ledger, status: str, at: datetime, *, errors: int, finished_reading: bool = True) -> str:
    campaign_id = str(uuid.uuid4())
    with ledger.begin() as conn:
        conn.execute(
            insert(campaigns).values(
                id=campaign_id,
                name=f"{status} campaign",
                provider="meta",
                template={},
                status=status,
                finished_reading_at=at if finished_reading else None,
                created_at=at,
                updated_at=at,
            )
        )
        conn.execute(
            insert(campaign_row_errors),
            [
                {"campaign_id": campaign_id, "row_number": row, "kind": "invalid", "reason": "bad phone"}
                for row in range(1, errors + 1)
            ],
        )
    return campaign_id


def counts(ledger: Ledger) -> dict[PruneKind, int]:
    with ledger.engine.connect() as conn:
        return {
            kind: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for kind, table in TABLES.items()
        }


@pytest.fixture
def deletes(ledger: Ledger) -> Iterator[Counter[str]]:
    """Rows removed by each DELETE statement the ledger runs, as ``"<table>:<rows>"`` counts."""
    seen: Counter[str] = Counter()

    def after_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split()
        if words[:2] == ["DELETE", "FROM"]:
            seen[f"{words[2]}:{cursor.rowcount}"] += 1

    event.listen(ledger.engine, "after_cursor_execute", after_execute)
    yield seen
    event.remove(ledger.engine, "after_cursor_execute", after_execute)


def test_prune_deletes_exactly_what_is_past_its_retention_in_small_batches(
    ledger: Ledger, deletes: Counter[str]
) -> None:
    built = build(ledger, utcnow())
    before = counts(ledger)
    settings = make_settings(prune_batch_size=4, **RETENTION)

    report = prune(ledger, settings, now=built.now)

    assert report.deleted == built.expected
    assert counts(ledger) == {kind: before[kind] - built.expected[kind] for kind in PruneKind}
    # Every DELETE removed at most a batch: 27 transitions take at least 7 of them.
    rows_per_delete = [(key.split(":")[0], int(key.split(":")[1])) for key in deletes.elements()]
    assert all(rows <= 4 for _, rows in rows_per_delete)
    assert sum(1 for table, rows in rows_per_delete if table == "transitions" and rows) >= 7
    assert sum(rows for _, rows in rows_per_delete) == sum(built.expected.values())

    for message_id in built.settled_old:  # the outcome stays, the history goes
        assert ledger.transitions(message_id) == []
        assert ledger.get(message_id).state in (State.SENT, State.FAILED)
    for message_id in built.kept_messages:
        assert ledger.transitions(message_id), message_id
    with ledger.engine.connect() as conn:
        keys = set(conn.execute(select(webhook_events.c.event_key)).scalars())
        letters = set(conn.execute(select(dead_letters.c.id)).scalars())
        erred = set(conn.execute(select(campaign_row_errors.c.campaign_id)).scalars())
    assert keys == set(built.recent_events)
    assert letters == set(built.letters_kept)
    assert erred == set(built.campaigns_kept)

    again = prune(ledger, settings, now=built.now)
    assert again.deleted == dict.fromkeys(PruneKind, 0)


def test_a_recent_dedupe_key_still_deduplicates_a_redelivered_webhook_after_a_prune(ledger: Ledger) -> None:
    built = build(ledger, utcnow())
    prune(ledger, make_settings(prune_batch_size=2, **RETENTION), now=built.now)

    for key in built.recent_events:
        redelivered = ledger.apply_webhook_reply("meta", key, MessageRef(), reply_id="no", reply_title="No")
        assert redelivered.duplicate, key
    # A pruned key is gone: the same event now would be applied as new.
    assert not ledger.apply_webhook_reply(
        "meta", "old-0", MessageRef(), reply_id="no", reply_title="No"
    ).duplicate


def test_a_dry_run_deletes_nothing_and_counts_what_a_prune_then_deletes(ledger: Ledger) -> None:
    built = build(ledger, utcnow())
    before = counts(ledger)
    settings = make_settings(prune_batch_size=3, **RETENTION)

    dry = prune(ledger, settings, now=built.now, dry_run=True)

    assert dry.dry_run
    assert counts(ledger) == before
    assert dry.deleted == built.expected
    assert prune(ledger, settings, now=built.now).deleted == dry.deleted


def test_a_kind_kept_forever_is_not_pruned(ledger: Ledger) -> None:
    built = build(ledger, utcnow())
    before = counts(ledger)
    settings = make_settings(
        **{**RETENTION, "prune_transitions_after_days": 0, "prune_campaign_errors_after_days": 0}
    )

    report = prune(ledger, settings, now=built.now)

    assert set(report.deleted) == {PruneKind.WEBHOOK_EVENTS, PruneKind.DEAD_LETTERS}
    assert report.as_dict()["transitions"] is None
    for message_id in built.settled_old:
        assert ledger.transitions(message_id)
    after = counts(ledger)
    assert after[PruneKind.CAMPAIGN_ERRORS] == before[PruneKind.CAMPAIGN_ERRORS]
    assert after[PruneKind.TRANSITIONS] == before[PruneKind.TRANSITIONS]


def test_a_settled_message_that_moves_on_gets_a_new_history(ledger: Ledger) -> None:
    built = build(ledger, utcnow())
    prune(ledger, make_settings(**RETENTION), now=built.now)
    sent = next(m for m in built.settled_old if ledger.get(m).state is State.SENT)

    ledger.transition(sent, State.SENT, State.READ)  # a late status callback

    assert [(t.from_state, t.to_state) for t in ledger.transitions(sent)] == [(State.SENT, State.READ)]
    assert prune(ledger, make_settings(**RETENTION)).deleted[PruneKind.TRANSITIONS] == 0


# --- wadispatch prune ------------------------------------------------------------------------------


def cli(database_url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    environment = {
        **base,
        "WADISPATCH_DATABASE_URL": database_url,
        "WADISPATCH_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "WADISPATCH_PRUNE_BATCH_SIZE": "3",
        **{f"WADISPATCH_{name.upper()}": str(days) for name, days in RETENTION.items()},
        **env,
    }
    return subprocess.run(
        [WADISPATCH, "prune", *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_prints_per_kind_what_it_would_delete_then_deletes_it(
    ledger: Ledger, database_url: str, tmp_path: Path
) -> None:
    built = build(ledger, utcnow())
    before = counts(ledger)

    dry = cli(database_url, tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert counts(ledger) == before
    assert dry.stdout.splitlines() == [
        "webhook events   would delete 9 (kept 14 days)",
        "transitions      would delete 27 (kept 30 days)",
        "dead letters     would delete 5 (kept 30 days)",
        "campaign errors  would delete 7 (kept 30 days)",
    ]

    done = cli(database_url, tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"dry_run": False, **{k.value: n for k, n in built.expected.items()}}
    assert counts(ledger) == {kind: before[kind] - built.expected[kind] for kind in PruneKind}

    again = cli(database_url, tmp_path, WADISPATCH_PRUNE_DEAD_LETTERS_AFTER_DAYS="0")
    assert again.returncode == 0, again.stderr
    assert "dead letters     kept forever (WADISPATCH_PRUNE_DEAD_LETTERS_AFTER_DAYS=0)" in again.stdout
    assert "transitions      deleted 0 (kept 30 days)" in again.stdout


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("WADISPATCH_PRUNE_WEBHOOK_EVENTS_AFTER_DAYS", "3", "at least 7 days"),
        ("WADISPATCH_PRUNE_TRANSITIONS_AFTER_DAYS", "-1", "greater than or equal to 0"),
        ("WADISPATCH_PRUNE_BATCH_SIZE", "lots", "valid integer"),
    ],
)
def test_a_bad_prune_setting_is_named_without_a_traceback(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    result = cli(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path, "--dry-run", **{variable: value})
    said = " ".join(result.stderr.split())  # rich wraps long lines
    assert result.returncode == 2
    assert f"configuration error: {variable}" in said
    assert says in said
    assert "Traceback" not in result.stderr + result.stdout
