"""The ledger's schema revisions: where a ledger stands, upgrading it, and the check at startup.

The revisions are alembic's, in :mod:`wadispatch.ledger.migrations`, run through alembic's command
API. A database stands in one of five ways (:class:`Standing`): empty (no ledger table yet), made by
the release before migrations (its tables, no ``alembic_version``), behind, current, or at a revision
this release does not know. :func:`prepare`, run whenever a ledger is opened, creates an empty one
at the head, and otherwise refuses a ledger that is not current unless asked to upgrade it;
:func:`upgrade` (``wadispatch db upgrade``) brings any known ledger to the head, keeping every row.

An upgrade holds a lock for its whole transaction (PostgreSQL: an advisory lock; SQLite: the write
lock, ``BEGIN IMMEDIATE``), so processes starting together on an empty database create it once.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from wadispatch.errors import LedgerBehind, UnknownLedgerSchema
from wadispatch.ledger.database import use_wal
from wadispatch.ledger.migrations import SCRIPT_LOCATION

#: The revision of the ledger as the release before migrations created it.
BASELINE = "0001_baseline"
#: The command that upgrades a ledger; every refusal names it.
UPGRADE_COMMAND = "wadispatch db upgrade"
#: Alembic's context is global to the process: its commands run one thread at a time (processes
#: are kept apart by the database's lock).
_ALEMBIC = threading.RLock()
#: PostgreSQL advisory lock key held while a ledger is upgraded (any constant: it spells "wadi").
_UPGRADE_LOCK = 0x77616469


class Standing(enum.StrEnum):
    """Where a database stands against this release's revisions."""

    EMPTY = "empty"
    """No ledger table yet: it is created at the head on first use."""
    UNVERSIONED = "unversioned"
    """The ledger tables of the release before migrations, with no ``alembic_version``."""
    BEHIND = "behind"
    CURRENT = "current"
    UNKNOWN = "unknown"
    """A revision this release does not know: a newer release upgraded it."""


@dataclass(frozen=True)
class LedgerStatus:
    """A ledger's revision (``None`` when it has none), the head revision, and so its standing."""

    revision: str | None
    head: str
    standing: Standing

    @property
    def needs_upgrade(self) -> bool:
        """Whether ``wadispatch db upgrade`` would change the schema."""
        return self.standing in (Standing.EMPTY, Standing.UNVERSIONED, Standing.BEHIND)

    def describe(self) -> str:
        """One line for people: the revision and what to do about it."""
        if self.standing is Standing.CURRENT:
            return f"at {self.revision} (head): up to date"
        if self.standing is Standing.EMPTY:
            return f"empty: no ledger yet; `{UPGRADE_COMMAND}` (or the first start) creates it at {self.head}"
        if self.standing is Standing.UNVERSIONED:
            return (
                f"made by the release before migrations (no revision recorded); head is {self.head}: "
                f"behind, run `{UPGRADE_COMMAND}`"
            )
        if self.standing is Standing.BEHIND:
            return f"at {self.revision}; head is {self.head}: behind, run `{UPGRADE_COMMAND}`"
        return f"at {self.revision}, a revision this release does not know (a newer release upgraded it)"


@dataclass(frozen=True)
class UpgradeResult:
    """What :func:`upgrade` did: the ledger's status before, and the revision it is at now."""

    before: LedgerStatus
    after: str

    def describe(self) -> str:
        """``from → to`` for people."""
        start = {
            Standing.EMPTY: "empty",
            Standing.UNVERSIONED: f"no revision ({BASELINE}, the release before migrations)",
        }.get(self.before.standing, str(self.before.revision))
        if self.before.standing is Standing.CURRENT:
            return f"already at {self.after} (head): nothing to do"
        return f"upgraded {start} → {self.after}"


@dataclass(frozen=True)
class Revision:
    """One revision of the ledger's schema, as ``db history`` lists it."""

    revision: str
    down_revision: str | None
    summary: str


def alembic_config(connection: Connection | None = None) -> Config:
    """alembic's configuration for the ledger's scripts; ``connection`` is the one env.py runs on."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this release knows."""
    head = _scripts().get_current_head()
    assert head is not None, "the ledger has no migrations"
    return head


def history() -> list[Revision]:
    """Every revision, oldest first."""
    scripts = reversed(list(_scripts().walk_revisions()))
    return [
        Revision(
            script.revision,
            script.down_revision if isinstance(script.down_revision, str) else None,
            (script.doc or "").strip(),
        )
        for script in scripts
    ]


def ledger_status(connectable: Engine | Connection) -> LedgerStatus:
    """Where the ledger on this engine (or connection) stands; reads, never writes."""
    if isinstance(connectable, Engine):
        with connectable.connect() as conn:
            return ledger_status(conn)
    head = head_revision()
    revision = MigrationContext.configure(connectable).get_current_revision()
    if revision is None:
        present = set(inspect(connectable).get_table_names()) & set(_shapes()[-1][1])
        return LedgerStatus(None, head, Standing.UNVERSIONED if present else Standing.EMPTY)
    if revision == head:
        return LedgerStatus(revision, head, Standing.CURRENT)
    known = {script.revision for script in _scripts().walk_revisions()}
    return LedgerStatus(revision, head, Standing.BEHIND if revision in known else Standing.UNKNOWN)


def prepare(engine: Engine, *, upgrade_older: bool = False) -> None:
    """Make the ledger ready for this release, or refuse it.

    An empty database is created at the head (as is any older ledger with ``upgrade_older``); a
    ledger behind raises :class:`LedgerBehind` naming ``wadispatch db upgrade``; one at an unknown
    revision raises :class:`UnknownLedgerSchema`.
    """
    status = ledger_status(engine)
    if status.standing is Standing.CURRENT:
        return
    if status.standing is Standing.EMPTY or (upgrade_older and status.needs_upgrade):
        upgrade(engine.url)
        return
    where = engine.url.render_as_string(hide_password=True)
    if status.standing is Standing.UNKNOWN:
        raise UnknownLedgerSchema(
            f"the ledger ({where}) is at revision {status.revision}, which this release of wadispatch "
            f"does not know (its newest is {status.head}): a newer release upgraded it"
        )
    standing = (
        f"is at {status.revision}"
        if status.revision
        else "has no revision recorded (made by the release before migrations)"
    )
    raise LedgerBehind(
        f"the ledger ({where}) {standing}, behind this release's {status.head}: run `{UPGRADE_COMMAND}` first"
    )


def require_current(url: str) -> None:
    """The check at a worker's, beat's or the API's start: :func:`prepare` on a short-lived engine
    of its own (nothing pooled is left behind for forked processes)."""
    from wadispatch.ledger.database import normalise_database_url

    engine = create_engine(normalise_database_url(str(url)), poolclass=NullPool)
    try:
        prepare(engine)
    finally:
        engine.dispose()


def upgrade(url: str | URL) -> UpgradeResult:
    """Bring the ledger at ``url`` to the head revision, keeping every row.

    An empty database gets every table; a ledger of the release before migrations is recognised
    by its tables and stamped with its revision first (:class:`UnknownLedgerSchema` if its tables
    are not those of any revision). Safe from several processes at once.
    """
    with _ALEMBIC, _upgrade_connection(url) as conn:
        before = ledger_status(conn)
        if before.standing is Standing.UNKNOWN:
            raise UnknownLedgerSchema(
                f"the ledger is at revision {before.revision}, which this release does not know "
                f"(its newest is {before.head}): a newer release upgraded it"
            )
        config = alembic_config(conn)
        if before.standing is Standing.UNVERSIONED:
            command.stamp(config, recognise(conn))
        if before.standing is not Standing.CURRENT:
            command.upgrade(config, "head")
        after = MigrationContext.configure(conn).get_current_revision()
    return UpgradeResult(before, after or before.head)


def recognise(conn: Connection) -> str:
    """The revision whose tables and columns an unversioned ledger has exactly.

    Only the ledger's own tables are compared (others in the same database are left alone);
    :class:`UnknownLedgerSchema` says how they differ from the baseline when none matches.
    """
    shapes = _shapes()
    names = {table for _, shape in shapes for table in shape}
    found = _shape(conn, names)
    for revision, shape in shapes:
        if shape == found:
            return revision
    baseline = shapes[0][1]
    differences = [f"no table {table}" for table in sorted(set(baseline) - set(found))]
    for table in sorted(set(baseline) & set(found)):
        if missing := sorted(baseline[table] - found[table]):
            differences.append(f"{table} lacks {', '.join(missing)}")
        if extra := sorted(found[table] - baseline[table]):
            differences.append(f"{table} has {', '.join(extra)} besides")
    differences += [f"table {table} besides" for table in sorted(set(found) - set(baseline))]
    raise UnknownLedgerSchema(
        "the database has ledger tables but no alembic_version, and they are not those of the "
        f"release before migrations ({BASELINE}): {'; '.join(differences)}. Upgrade it with the "
        "release that made it first, or point WADISPATCH_DATABASE_URL at another database"
    )


@cache
def _shapes() -> tuple[tuple[str, dict[str, frozenset[str]]], ...]:
    """Each revision's tables and their columns, oldest first, from running the revisions on an
    in-memory SQLite database (so the revisions themselves are the only description)."""
    engine = create_engine("sqlite://")
    shapes: list[tuple[str, dict[str, frozenset[str]]]] = []
    try:
        with _ALEMBIC, engine.connect() as conn:
            config = alembic_config(conn)
            for revision in history():
                command.upgrade(config, revision.revision)
                conn.commit()
                shapes.append((revision.revision, _shape(conn, None)))
    finally:
        engine.dispose()
    return tuple(shapes)


def _shape(conn: Connection, names: set[str] | None) -> dict[str, frozenset[str]]:
    inspector = inspect(conn)
    return {
        table: frozenset(column["name"] for column in inspector.get_columns(table))
        for table in inspector.get_table_names()
        if table != "alembic_version" and (names is None or table in names)
    }


@contextmanager
def _upgrade_connection(url: str | URL) -> Iterator[Connection]:
    """A connection in a transaction that holds the upgrade lock, committed on success."""
    url = make_url(url)
    engine = create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_manual_transactions)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    try:
        with engine.connect() as conn, conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
            yield conn
    finally:
        engine.dispose()


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite begins transactions only before DML and so runs DDL outside them; take over, so the
    # whole upgrade is one transaction (SQLAlchemy's documented recipe).
    dbapi_connection.isolation_level = None
    use_wal(dbapi_connection)


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
