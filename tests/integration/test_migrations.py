"""The ledger's schema revisions on real databases (SQLite always, PostgreSQL with TEST_DATABASE_URL).

A ledger of the release before migrations (tests/samples/ledger-ea5aa00) is upgraded in place by
``wadispatch db upgrade`` with every row kept; ``upgrade head`` on an empty database gives exactly
the tables of :mod:`wadispatch.ledger.schema`; a ledger behind this release stops the ledger, the
API and a worker at start, each naming ``wadispatch db upgrade``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from wadispatch.api import create_app
from wadispatch.errors import ConfigurationError, LedgerBehind, UnknownLedgerSchema
from wadispatch.ledger import Ledger, metadata, revisions
from wadispatch.localstack import WorkerProcess
from wadispatch.messages import SendRequest
from wadispatch.states import State

from tests.support import button_request, make_settings

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "ledger-ea5aa00" / "ledger.sql"
WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))
#: The rows the sample holds, table by table (a check that the fixture is what the tests think).
SAMPLE_ROWS = {
    "messages": 8,
    "transitions": 21,
    "webhook_events": 3,
    "api_keys": 2,
    "dead_letters": 2,
    "campaigns": 1,
    "campaign_row_errors": 3,
    "suppressions": 2,
}
SAMPLE_STATES = {"pending": 3, "sending": 1, "sent": 1, "delivered": 1, "read": 1, "failed": 1}
NEW_COLUMNS = {
    "messages": {"requested_at", "expires_at", "held_until", "fallback", "sent_as"},
    "campaigns": {
        *("senders", "start_at", "send_window", "time_zone"),
        *("valid_for_seconds", "expires_at", "fallback"),
    },
}
#: Tables added since the last release: empty after the upgrade.
NEW_TABLES = {"early_events", "contacts", "sender_assignments"}
AUTO_IDS = ("transitions", "dead_letters", "suppressions")


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("PostgreSQL ledger tests need TEST_DATABASE_URL")
    schema = f"wadispatch_mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def engine_for(url: str) -> Any:
    return create_engine(url, poolclass=NullPool)


def load_sample(url: str, tmp_path: Path) -> None:
    """Make ``url`` a ledger of the release before migrations holding the sample's rows.

    SQLite: the sample's own dump. PostgreSQL: the baseline revision's tables, without
    ``alembic_version``, and the sample's rows copied into them.
    """
    sample = tmp_path / "sample.sqlite3"
    connection = sqlite3.connect(sample)
    connection.executescript(SAMPLE.read_text(encoding="utf-8"))
    connection.close()
    if url.startswith("sqlite"):
        Path(make_url(url).database or "").write_bytes(sample.read_bytes())
        return
    engine = engine_for(url)
    source = engine_for(f"sqlite:///{sample}")
    try:
        with engine.begin() as conn:
            command.upgrade(revisions.alembic_config(conn), revisions.BASELINE)
            conn.execute(text("DROP TABLE alembic_version"))
            with source.connect() as old:
                for table in metadata.sorted_tables:
                    if table.name in NEW_TABLES:
                        continue
                    columns = [c for c in table.columns if c.name not in NEW_COLUMNS.get(table.name, ())]
                    rows = [dict(row._mapping) for row in old.execute(select(*columns))]
                    for row in rows:  # SQLite's times are naive; the ledger's are UTC
                        row.update(
                            {k: v.replace(tzinfo=UTC) for k, v in row.items() if isinstance(v, datetime)}
                        )
                    if rows:
                        conn.execute(insert(table), rows)
            for name in AUTO_IDS:
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}")
                )
    finally:
        engine.dispose()
        source.dispose()


def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every ledger table there as the driver returns it, in primary-key order."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            found: dict[str, list[dict[str, Any]]] = {}
            present = set(inspect(conn).get_table_names())
            for table in metadata.sorted_tables:
                if table.name not in present:
                    continue
                order = ", ".join(column.name for column in table.primary_key.columns)
                result = conn.execute(text(f"SELECT * FROM {table.name} ORDER BY {order}"))
                found[table.name] = [dict(row._mapping) for row in result]
            return found
    finally:
        engine.dispose()


def schema_differences(url: str) -> list[Any]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = engine_for(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def db(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``wadispatch db ARGS`` on ``url``, as a user runs it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env |= {"WADISPATCH_DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [WADISPATCH, "db", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- upgrade head gives exactly schema.py ---------------------------------------------------------


def test_upgrade_head_on_an_empty_database_gives_exactly_the_schemas_tables(empty_url: str) -> None:
    """The guard: a change to wadispatch.ledger.schema without its revision fails here."""
    result = revisions.upgrade(empty_url)
    assert (result.before.standing, result.after) == (revisions.Standing.EMPTY, revisions.head_revision())
    assert schema_differences(empty_url) == []
    assert table_names(empty_url) == {*metadata.tables, "alembic_version"}


def test_the_guard_sees_a_column_missing_from_the_revisions(empty_url: str) -> None:
    engine = engine_for(empty_url)
    try:
        with engine.begin() as conn:
            command.upgrade(revisions.alembic_config(conn), revisions.BASELINE)
    finally:
        engine.dispose()
    differences = schema_differences(empty_url)
    added = [(diff[2], diff[3].name) for diff in differences if diff[0] == "add_column"]
    assert ("messages", "requested_at") in added


def test_an_empty_database_is_created_once_by_processes_opening_it_together(empty_url: str) -> None:
    errors: list[BaseException] = []

    def open_ledger() -> None:
        try:
            Ledger.from_url(empty_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_ledger) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert schema_differences(empty_url) == []
    engine = engine_for(empty_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
                revisions.head_revision()
            ]
    finally:
        engine.dispose()


# --- the last release's ledger, upgraded in place ---------------------------------------------------


def test_the_last_releases_ledger_is_upgraded_in_place_with_every_row_kept(
    empty_url: str, tmp_path: Path
) -> None:
    load_sample(empty_url, tmp_path)
    before = snapshot(empty_url)
    assert {name: len(rows) for name, rows in before.items()} == SAMPLE_ROWS

    current = db(empty_url, tmp_path, "current")
    assert current.returncode == 1
    assert "made by the release before migrations" in current.stdout
    assert "wadispatch db upgrade" in current.stdout

    upgraded = db(empty_url, tmp_path, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (
        f"{revisions.BASELINE}, the release before migrations) → {revisions.head_revision()}"
        in upgraded.stdout
    )

    after = snapshot(empty_url)
    assert set(after) == set(before) | NEW_TABLES and not NEW_TABLES & set(before)
    assert all(after[name] == [] for name in NEW_TABLES)
    for name, rows in after.items():
        if name in NEW_TABLES:
            continue
        added = NEW_COLUMNS.get(name, set())
        assert all(row[column] is None for row in rows for column in added), name
        assert [{k: v for k, v in row.items() if k not in added} for row in rows] == before[name], name
    assert schema_differences(empty_url) == []

    current = db(empty_url, tmp_path, "current")
    assert (current.returncode, current.stdout.strip()) == (
        0,
        f"ledger at {revisions.head_revision()} (head): up to date",
    )
    again = db(empty_url, tmp_path, "upgrade")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert snapshot(empty_url) == after


def test_the_upgraded_ledger_reads_and_writes_as_before(empty_url: str, tmp_path: Path) -> None:
    load_sample(empty_url, tmp_path)
    revisions.upgrade(empty_url)
    ledger = Ledger.from_url(empty_url)
    try:
        assert ledger.count_by_state() == SAMPLE_STATES
        [read] = [record for record in ledger.all_messages() if record.reply_id]
        assert (read.state, read.reply_id, read.provider_message_id) == (State.READ, "yes", "wamid.read")
        assert [t.to_state for t in ledger.transitions(read.id)] == [
            State.PENDING,
            State.SENDING,
            State.SENT,
            State.READ,
        ]
        assert sorted(key.name for key in ledger.list_api_keys()) == ["helpdesk-web", "old-key"]
        assert len(ledger.dead_letters(include_replayed=False)) == 1
        message_id, created = ledger.record_pending(SendRequest.model_validate(button_request()))
        assert created
        ledger.transition(message_id, State.PENDING, State.SENDING)
        assert ledger.get(message_id).state is State.SENDING
    finally:
        ledger.dispose()


def test_a_ledger_recorded_at_no_revision_with_the_new_column_is_stamped_at_its_revision(
    tmp_path: Path,
) -> None:
    """A ledger a build between the releases gave ``requested_at`` (no alembic_version either)."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    load_sample(url, tmp_path)
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE messages ADD COLUMN requested_at DATETIME"))
    engine.dispose()
    result = revisions.upgrade(url)
    assert result.after == revisions.head_revision()
    assert schema_differences(url) == []


def test_tables_that_are_not_the_baseline_are_refused_and_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = engine_for(url)
    with engine.begin() as conn:  # a ledger of a release before campaigns
        conn.execute(
            text(
                "CREATE TABLE messages (id VARCHAR(36) PRIMARY KEY, provider VARCHAR(16) NOT NULL, "
                "request JSON NOT NULL, state VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL, "
                "created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)"
            )
        )
    engine.dispose()
    result = db(url, tmp_path, "upgrade")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "not those of the release before migrations" in message
    assert "no table transitions" in message and "messages lacks campaign_id" in message
    assert table_names(url) == {"messages"}
    with pytest.raises(UnknownLedgerSchema):
        revisions.upgrade(url)


# --- refusing a ledger behind -------------------------------------------------------------------


def test_a_ledger_behind_stops_the_ledger_the_api_and_a_worker_naming_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    load_sample(url, tmp_path)
    with pytest.raises(LedgerBehind, match="wadispatch db upgrade"):
        Ledger.from_url(url)
    with pytest.raises(LedgerBehind, match="wadispatch db upgrade"):
        revisions.require_current(url)
    with pytest.raises(LedgerBehind, match="wadispatch db upgrade"):
        create_app(make_settings(database_url=url))

    env = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env |= {"WADISPATCH_DATABASE_URL": url, "WADISPATCH_REDIS_URL": "redis://127.0.0.1:9/0", "COLUMNS": "200"}
    api = subprocess.run(
        [WADISPATCH, "api", "--port", "0"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert api.returncode == 2
    assert "wadispatch db upgrade" in api.stderr
    supervised = subprocess.run(
        [WADISPATCH, "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert supervised.returncode == 2
    assert "wadispatch db upgrade" in supervised.stderr
    worker = WorkerProcess(env, name=f"behind-{uuid.uuid4().hex[:6]}", concurrency=1, log_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="exited at start") as caught:
        worker.start(ready_timeout=30)
    assert "wadispatch db upgrade" in str(caught.value)
    assert snapshot(url)["messages"], "nothing was upgraded behind the user's back"
    assert "alembic_version" not in table_names(url)


def test_the_demos_way_of_opening_upgrades_a_ledger_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    load_sample(url, tmp_path)
    Ledger.from_url(url, upgrade=True).dispose()
    assert schema_differences(url) == []


# --- db current and db history ---------------------------------------------------------------------


def test_db_current_on_an_empty_a_behind_and_a_current_ledger(empty_url: str, tmp_path: Path) -> None:
    head = revisions.head_revision()
    empty = db(empty_url, tmp_path, "current")
    assert empty.returncode == 1
    assert empty.stdout.startswith("ledger empty: no ledger yet") and "wadispatch db upgrade" in empty.stdout
    assert table_names(empty_url) == set(), "db current only reads"

    engine = engine_for(empty_url)
    with engine.begin() as conn:
        command.upgrade(revisions.alembic_config(conn), revisions.BASELINE)
    engine.dispose()
    behind = db(empty_url, tmp_path, "current")
    assert behind.returncode == 1
    assert behind.stdout.strip() == (
        f"ledger at {revisions.BASELINE}; head is {head}: behind, run `wadispatch db upgrade`"
    )
    assert json.loads(db(empty_url, tmp_path, "current", "--json").stdout) == {
        "revision": revisions.BASELINE,
        "head": head,
        "standing": "behind",
    }
    with pytest.raises(LedgerBehind, match=f"is at {revisions.BASELINE}, behind this release's {head}"):
        Ledger.from_url(empty_url)

    upgraded = db(empty_url, tmp_path, "upgrade")
    assert upgraded.stdout.strip() == f"upgraded {revisions.BASELINE} → {head}"
    current = db(empty_url, tmp_path, "current")
    assert (current.returncode, current.stdout.strip()) == (0, f"ledger at {head} (head): up to date")


def test_a_revision_this_release_does_not_know_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    Ledger.from_url(url).dispose()
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_a_newer_release'"))
    engine.dispose()
    current = db(url, tmp_path, "current")
    assert current.returncode == 2 and "does not know" in current.stdout
    with pytest.raises(UnknownLedgerSchema, match="9999_from_a_newer_release"):
        Ledger.from_url(url)
    assert db(url, tmp_path, "upgrade").returncode == 2


def test_db_history_lists_the_revisions_oldest_first(tmp_path: Path) -> None:
    result = db("sqlite:///unused.sqlite3", tmp_path, "history")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [revision.revision for revision in revisions.history()]
    assert lines[0].startswith(f"{revisions.BASELINE}  Baseline")
    assert lines[-1].startswith(f"{revisions.head_revision()} (head)")
    assert not (tmp_path / "unused.sqlite3").exists()
