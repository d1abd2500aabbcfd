"""Shared fixtures: a real ledger (SQLite always, PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from wadispatch.ledger import Ledger, metadata
from wadispatch.settings import Settings

from tests.support import make_settings

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """TEST_DATABASE_URL narrowed to a schema of this test run's own, dropped at the end.

    A private schema keeps parallel runs apart and always starts from the current table
    definitions, whatever an earlier run left in the shared database.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield None
        return
    schema = f"wadispatch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def database_url_for(backend: str, tmp_path: Path, postgres_url: str | None) -> str:
    """A fresh database URL for one test, or skip when that backend is not available."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    if not postgres_url:
        pytest.skip("PostgreSQL ledger tests need TEST_DATABASE_URL")
    return postgres_url


def empty_ledger(url: str) -> Ledger:
    ledger = Ledger.from_url(url)
    if ledger.engine.dialect.name == "postgresql":
        with ledger.engine.begin() as conn:
            names = ", ".join(table.name for table in reversed(metadata.sorted_tables))
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return ledger


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    return database_url_for(request.param, tmp_path, postgres_url)


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = empty_ledger(database_url)
    yield ledger
    ledger.dispose()


@pytest.fixture
def settings() -> Settings:
    """Settings from explicit values only (no environment, no .env file)."""
    return make_settings()
