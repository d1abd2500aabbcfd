"""Shared fixtures: a real ledger (SQLite always, PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support import make_settings
from workers.ledger import Ledger, metadata
from workers.settings import Settings

BACKENDS = ["sqlite", "postgresql"]


def database_url_for(backend: str, tmp_path: Path) -> str:
    """A fresh database URL for one test, or skip when that backend is not available."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL ledger tests need TEST_DATABASE_URL")
    return url


def empty_ledger(url: str) -> Ledger:
    ledger = Ledger.from_url(url)
    if ledger.engine.dialect.name == "postgresql":
        with ledger.engine.begin() as conn:
            names = ", ".join(table.name for table in reversed(metadata.sorted_tables))
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return ledger


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url_for(request.param, tmp_path)


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = empty_ledger(database_url)
    yield ledger
    ledger.dispose()


@pytest.fixture
def settings() -> Settings:
    """Settings from explicit values only (no environment, no .env file)."""
    return make_settings()
