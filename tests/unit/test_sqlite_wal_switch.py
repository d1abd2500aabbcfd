"""Putting a SQLite ledger in WAL mode while another connection holds the file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from wadispatch.ledger import database


def test_the_wal_switch_waits_for_a_connection_holding_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(0.3, holder.execute, ["COMMIT"])
    released.start()
    opener = sqlite3.connect(path, timeout=0)
    try:
        database.use_wal(opener)
        assert not released.is_alive()
        assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        released.join()
        opener.close()
        holder.close()


def test_the_wal_switch_gives_up_after_the_lock_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_SECONDS", 0.2)
    path = tmp_path / "ledger.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    opener = sqlite3.connect(path, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            database.use_wal(opener)
    finally:
        opener.close()
        holder.execute("COMMIT")
        holder.close()
