"""Fault injection: the ledger's PostgreSQL server restarted in the middle of a campaign.

A private PostgreSQL server (Debian's binaries, a data folder in the test's tmp_path, its own
port on 127.0.0.1) so that stopping it touches nothing else. Runs when ``TEST_DATABASE_URL`` is
set (PostgreSQL tests) and the server's binaries are installed. Run alone: ``-m faults``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wadispatch.ledger import Ledger
from wadispatch.states import State

from tests.integration.conftest import worker_env
from tests.integration.test_faults import (  # noqa: F401  (fixtures)
    CAMPAIGN_ENV,
    FAULT_ENV,
    TERMINAL,
    all_terminal,
    check_report_agrees_with_ledger,
    outcome,
    provider,
    real_campaign,
    sent_at_least,
    start_beat,
)
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(240)]


def _server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PrivatePostgres:
    """A throwaway PostgreSQL server on 127.0.0.1 that a test may stop and start again."""

    def __init__(self, root: Path, binaries: Path) -> None:
        self.root, self.binaries = root, binaries
        self.data = root / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root: as root, run it as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            if os.geteuid() == 0:
                shutil.chown(self.root, "postgres")
            self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_seconds: float) -> None:
        """Stop at once (every connection cut, as in a crash), stay down, then start again."""
        self.stop("immediate")
        time.sleep(down_seconds)
        self.start()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("PostgreSQL fault tests need TEST_DATABASE_URL")
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server binaries (pg_ctl, initdb) are not installed")
    # Not under pytest's tmp folder: that one is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="wadispatch-pg-"))
    server = PrivatePostgres(root, binaries).start()
    yield server
    with contextlib.suppress(subprocess.CalledProcessError):
        server.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


def test_postgresql_restarted_mid_campaign_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
    private_postgres: PrivatePostgres,
    producer_app,
    redis_url: str,
    queue_name: str,
    start_worker,
    start_beat,  # noqa: F811
    provider,  # noqa: F811
) -> None:
    database_url = private_postgres.url
    ledger = Ledger.from_url(database_url)
    try:
        provider.server.configure(latency_ms=200)
        env = {**provider.server.base_urls(), **FAULT_ENV, **CAMPAIGN_ENV}
        start_worker(database_url, name="w1", concurrency=4, **env)
        start_worker(database_url, name="w2", concurrency=4, **env)
        start_beat({**worker_env(redis_url, database_url, queue_name, provider.server), **FAULT_ENV})
        campaign_id = real_campaign(ledger, tmp_path, 1000)
        wait_for(sent_at_least(ledger, 250), timeout=60)
        at_restart = ledger.count_by_state()
        private_postgres.restart(down_seconds=3.0)
        wait_for(lambda: all_terminal(ledger), timeout=150)
        records, figures = outcome(ledger, provider, 1000)
        print({"at_restart": at_restart})
        assert {record.state for record in records} <= TERMINAL
        assert set(figures["failed_reasons"]) <= {"unknown_outcome"}
        assert figures["received_twice"] == 0
        accepted = provider.accepted_per_recipient()
        unknown = [record for record in records if record.reason == "unknown_outcome"]
        # Every failure is a request that reached the provider; nothing it took went unrecorded.
        assert all(accepted[record.recipient.lstrip("+")] == 1 for record in unknown)
        sent = [record for record in records if record.state is State.SENT]
        assert sum(accepted.values()) == len(sent) + len(unknown) == 1000
        check_report_agrees_with_ledger(ledger, tmp_path, campaign_id, 1000)
    finally:
        ledger.dispose()
