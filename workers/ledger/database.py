"""The ledger's connection to its database: engine, write transactions, its schema at the head revision."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Self

from sqlalchemy import Connection, Engine, create_engine, event, text
from wadispatch import jsoncodec
from wadispatch.ledger.schema import messages, transitions

log = logging.getLogger("wadispatch.ledger")

#: The ledger's JSON columns (every message's request, every transition's detail) through orjson.
_JSON: dict[str, Any] = {"json_serializer": jsoncodec.dumps, "json_deserializer": jsoncodec.loads}


class Database:
    """A ledger database: SQLite (WAL) or PostgreSQL, through SQLAlchemy Core."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_lock: AbstractContextManager[object] = (
            SqliteWriteLock(engine.url.database) if engine.dialect.name == "sqlite" else nullcontext()
        )
        self._keeps_driver = engine.dialect.name == "sqlite"
        self._driver: Any = None
        self._driver_pid: int | None = None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction.

        On SQLite, writers take turns through :class:`SqliteWriteLock`: SQLite admits one
        writer at a time anyway, and while it waits its busy handler sleeps (up to 100 ms a
        turn), where a lock hands over at once.
        """
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def begin_driver(self) -> Iterator[Any]:
        """A write transaction on the driver's own connection (the write lock as :meth:`begin`):
        committed on leaving, rolled back on an error.

        For the one hottest write, a single message recorded by ``enqueue()``, where SQLAlchemy's
        connection and transaction objects cost as much as the insert itself. On SQLite, whose
        writers take turns anyway, one connection is kept for it (taken from the pool once); on
        PostgreSQL each transaction checks one out of the pool (pinged there, as for any other).
        """
        with self._write_lock:
            kept = self._driver if self._driver_pid == os.getpid() else None
            connection = kept or self.engine.raw_connection()
            try:
                yield connection
                connection.commit()
            except BaseException:
                try:
                    connection.rollback()
                except Exception:
                    self._driver = None
                    connection.invalidate()
                    raise
                if not self._keeps_driver:
                    connection.close()
                raise
            if self._keeps_driver:
                self._driver, self._driver_pid = connection, os.getpid()
            else:
                connection.close()

    @classmethod
    def from_url(
        cls, url: str, *, pool_size: int = 10, max_overflow: int = 10, upgrade: bool = False
    ) -> Self:
        """A ledger on a database URL; ``postgresql://`` URLs use the psycopg (3) driver.

        An empty database gets the schema at the head revision. A ledger behind this release
        raises :class:`~wadispatch.errors.LedgerBehind` (naming ``wadispatch db upgrade``) unless
        ``upgrade`` is true (the demo, tests): then it is upgraded in place.
        """
        url = normalise_database_url(url)
        if url.startswith("sqlite"):
            engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, **_JSON)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, **_JSON
            )
        # alembic (a tenth of a second to import) is loaded when a ledger opens, not with the package.
        from wadispatch.ledger import revisions

        try:
            revisions.prepare(engine, upgrade_older=upgrade)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def create_schema(self) -> None:
        """Bring the schema to the head revision: create it, or upgrade an older ledger in place
        (safe from several processes at once)."""
        from wadispatch.ledger import revisions

        revisions.upgrade(self.engine.url)

    def analyze_messages(self) -> None:
        """On PostgreSQL, refresh the planner's statistics of messages and transitions (after a
        bulk load they lag far behind; ``ANALYZE`` samples a fixed number of rows, so it takes
        well under a second). A failure is logged: only a faster plan is lost."""
        if self.engine.dialect.name != "postgresql":
            return
        try:
            with self.begin() as conn:
                conn.execute(text(f"ANALYZE {messages.name}, {transitions.name}"))
        except Exception as exc:
            log.warning("could not ANALYZE the ledger: %s", type(exc).__name__)

    def dispose(self) -> None:
        """Close the pooled connections."""
        with self._write_lock:
            if self._driver is not None and self._driver_pid == os.getpid():
                self._driver.close()
            self._driver = None
        self.engine.dispose()


class SqliteWriteLock:
    """The turn of one writer to a SQLite database, among this process's threads and every
    process on the machine that writes it through a ledger.

    A thread lock, then an exclusive ``flock`` on a file beside the database
    (``<database>-wadispatch.lock``; never the database itself: SQLite's own locks would be
    lost when another descriptor of it closes). The kernel hands a released lock to the next
    waiter at once, where SQLite's busy handler polls with sleeps of up to 100 ms: with several
    worker processes on one SQLite file those sleeps were most of a write's time. An in-memory
    database, or one whose lock file cannot be opened, takes only the thread lock.
    """

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._path = _lock_path(database)
        self._fd: int | None = None
        self._fd_pid: int | None = None

    def __enter__(self) -> SqliteWriteLock:
        self._threads.acquire()
        try:
            fd = self._descriptor()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        try:
            if self._fd is not None and self._fd_pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _descriptor(self) -> int | None:
        if self._path is None:
            return None
        if self._fd_pid != os.getpid():  # a forked child opens its own (a lock is per open file)
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                log.warning(
                    "no write lock file beside the SQLite ledger (%s): SQLite's busy wait instead", exc
                )
                self._path = None
                return None
            self._fd_pid = os.getpid()
        return self._fd


def _lock_path(database: str | None) -> str | None:
    """The write lock file of a SQLite database file; ``None`` for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-wadispatch.lock"


def normalise_database_url(url: str) -> str:
    """Pick the installed PostgreSQL driver for plain ``postgresql://`` and ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


#: How long a SQLite connection waits for a lock another connection holds, in seconds.
SQLITE_BUSY_SECONDS = 30.0


def use_wal(dbapi_connection: Any) -> None:
    """Set the connection's lock wait, then put its database in WAL mode.

    Switching to WAL needs the database to itself, and SQLite answers "database is locked" at
    once, without its busy wait, while another connection (a process creating a new ledger) holds
    it. WAL is kept in the file, so the switch is retried until it is done, by this connection or
    another, for as long as a lock is waited for.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
        deadline = time.monotonic() + SQLITE_BUSY_SECONDS
        pause = 0.005
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
    finally:
        cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    use_wal(dbapi_connection)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
