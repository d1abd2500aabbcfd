"""The parts a benchmark run starts: Redis, the simulator in its own process, ledgers and workers.

:class:`Stack` owns all of them: whatever it started is stopped when it closes, also on an error or
Ctrl-C, each stop bounded in time. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from wadispatch.ledger import Ledger, normalise_database_url
from wadispatch.localstack import EmbeddedRedis, WorkerProcess, stop_process_group
from wadispatch.simulator import SimulatorConfig
from wadispatch.simulator.server import base_urls

from tests.bench import naive
from tests.bench.options import BenchOptions
from tests.bench.workload import CREDENTIALS

_LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")


class SimulatorProcess:
    """The provider simulator as ``python -m wadispatch.simulator`` in a process of its own.

    It must not share a GIL with the load generator. It listens on a free loopback port and is
    reconfigured between runs through its control API (``PUT /_sim/config``, ``POST /_sim/reset``).
    """

    def __init__(self, config: SimulatorConfig, workdir: Path) -> None:
        self.config_path = workdir / "simulator.json"
        self.log_path = workdir / "simulator.log"
        self.config_path.write_text(json.dumps(config.model_dump(mode="json")), encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._client: httpx.Client | None = None

    def start(self, timeout: float = 30.0) -> SimulatorProcess:
        """Start the process; return once it answers on its port."""
        command = [
            sys.executable,
            "-m",
            "wadispatch.simulator",
            "--config",
            str(self.config_path),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulator exited at start:\n{self.log_tail()}")
            found = _LISTENING.search(self.log_path.read_bytes())
            if found:
                self.url = found.group(1).decode()
                self._client = httpx.Client(base_url=self.url, timeout=60.0)
                self._client.get("/_sim/health").raise_for_status()
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the simulator did not listen within {timeout:.0f}s:\n{self.log_tail()}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def base_urls(self) -> dict[str, str]:
        """The ``WADISPATCH_*_BASE_URL`` values pointing every provider at this simulator."""
        return base_urls(self.url)

    def meta_base_url(self) -> str:
        return self.base_urls()["WADISPATCH_META_BASE_URL"]

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("the simulator is not started")
        return self._client

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change some knobs (the others are kept); return the config in force."""
        response = self.client.put("/_sim/config", json=changes)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Clear counters, the accepted log and the limit windows."""
        self.client.post("/_sim/reset").raise_for_status()

    def stats(self, *, log: bool = False) -> dict[str, Any]:
        """``GET /_sim/stats`` (with the accepted log when ``log``)."""
        response = self.client.get("/_sim/stats", params={"log": int(log)})
        response.raise_for_status()
        return response.json()

    def requests_total(self) -> int:
        return int(self.stats()["requests_total"])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL what is left after ``timeout`` seconds."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process is not None:
            stop_process_group(self.process, timeout)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Stack:
    """Redis, the simulator, ledgers and workers of one benchmark run.

    >>> with Stack(options, SimulatorConfig(...)) as stack:
    ...     queue = stack.queue("t1")
    ...     with stack.database("t1") as (url, ledger), ExitStack() as run:  # workers stop first
    ...         env = stack.project_env(url, queue)
    ...         stack.start_workers(run, env, queue, count=2, label="t1", pool="threads", concurrency=8)
    """

    def __init__(self, options: BenchOptions, simulator_config: SimulatorConfig) -> None:
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="wadispatch-bench-"))
        self.keep_workdir = options.keep
        self._exit = ExitStack()
        self._simulator_config = simulator_config
        self._queues: list[str] = []
        self.redis_url = ""
        self.redis_source = ""
        self.simulator: SimulatorProcess | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            self.keep_workdir = True  # the logs tell what went wrong
        self.close()

    def _start(self) -> None:
        if self.options.redis_url:
            self.redis_url, self.redis_source = self.options.redis_url, "configured"
        else:
            server = EmbeddedRedis().start()
            self._exit.callback(server.stop)
            self.redis_url, self.redis_source = server.url, "embedded Valkey"
        self._exit.callback(self._purge_queues)
        simulator = SimulatorProcess(self._simulator_config, self.workdir)
        self._exit.callback(simulator.stop)
        self.simulator = simulator.start()

    def close(self) -> None:
        """Stop everything started (the newest first); remove the work directory unless kept."""
        try:
            self._exit.close()
        finally:
            if not self.keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def sim(self) -> SimulatorProcess:
        if self.simulator is None:
            raise RuntimeError("the stack is not started")
        return self.simulator

    # --- queues ---------------------------------------------------------------------------------

    def queue(self, label: str) -> str:
        """A queue name of this run's own; its keys are deleted from Redis at the end."""
        name = f"wadispatch-bench-{label}-{uuid.uuid4().hex[:8]}"
        self._queues.append(name)
        return name

    def purge(self, queue: str) -> None:
        """Delete every Redis key of ``queue`` (the list, its priorities and bindings)."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        try:
            keys = list(client.scan_iter(match=f"*{queue}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    def _purge_queues(self) -> None:
        for queue in self._queues:
            with contextlib.suppress(Exception):  # best effort: the broker may be gone
                self.purge(queue)

    # --- ledgers --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def database(self, label: str) -> Iterator[tuple[str, Ledger]]:
        """A fresh, empty ledger: its URL (for the workers) and an open :class:`Ledger`.

        SQLite: a new file in the work directory. PostgreSQL (``--database-url``): a new schema,
        dropped afterwards; the URL sets ``search_path`` to it.
        """
        if not self.options.database_url:
            url = f"sqlite:///{self.workdir / f'ledger-{label}-{uuid.uuid4().hex[:6]}.sqlite3'}"
            ledger = Ledger.from_url(url)
            try:
                yield url, ledger
            finally:
                ledger.dispose()
            return
        schema = f"wadispatch_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(normalise_database_url(self.options.database_url), pool_size=1)
        try:
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = _with_search_path(self.options.database_url, schema)
            ledger = Ledger.from_url(url)
            try:
                yield url, ledger
            finally:
                ledger.dispose()
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()

    # --- workers --------------------------------------------------------------------------------

    def project_env(
        self, database_url: str, queue: str, *, default_rate: int | None = None
    ) -> dict[str, str]:
        """The environment of the project's workers, as the demo sets it (plus the default rate)."""
        env = {
            "WADISPATCH_REDIS_URL": self.redis_url,
            "WADISPATCH_DATABASE_URL": database_url,
            "WADISPATCH_QUEUE": queue,
            "WADISPATCH_BACKOFF_BASE_SECONDS": "0.5",
            "WADISPATCH_BACKOFF_CAP_SECONDS": "5",
            **self.sim.base_urls(),
            **CREDENTIALS,
        }
        if default_rate is not None:
            env["WADISPATCH_DEFAULT_RATE"] = str(default_rate)
        return env

    def start_workers(
        self,
        run: ExitStack,
        env: dict[str, str],
        queue: str,
        *,
        count: int,
        label: str,
        pool: str,
        concurrency: int,
    ) -> list[WorkerProcess]:
        """Start ``count`` project workers at once; ``run`` stops them. Returns once all consume."""
        workers = [
            WorkerProcess(
                env,
                name=f"{label}-{index + 1}-{uuid.uuid4().hex[:4]}",
                pool=pool,
                concurrency=concurrency,
                queue=queue,
                log_dir=self.workdir,
            )
            for index in range(count)
        ]
        return self._start_all(run, workers)

    def start_naive_workers(
        self, run: ExitStack, queue: str, *, label: str, count: int, pool: str, concurrency: int
    ) -> list[WorkerProcess]:
        """Start ``count`` workers of the naive reference (:mod:`tests.bench.naive`) on ``queue``."""
        workers = [
            WorkerProcess(
                naive.worker_env(self.redis_url, queue, self.options.naive_client),
                name=f"{label}-{index + 1}-{uuid.uuid4().hex[:4]}",
                pool=pool,
                concurrency=concurrency,
                queue=queue,
                log_dir=self.workdir,
                app="tests.bench.naive",
                task_events=False,
            )
            for index in range(count)
        ]
        return self._start_all(run, workers)

    def _start_all(self, run: ExitStack, workers: list[WorkerProcess]) -> list[WorkerProcess]:
        for worker in workers:
            run.callback(worker.stop, 10.0)
        with ThreadPoolExecutor(max_workers=len(workers)) as pool:
            for future in [pool.submit(worker.start) for worker in workers]:
                future.result()
        return workers


def worker_trouble(workers: list[WorkerProcess]) -> str | None:
    """Why these workers cannot finish, when it shows: one exited, or a task is unknown to them."""
    for worker in workers:
        if worker.process is not None and worker.process.poll() is not None:
            return f"worker {worker.name} exited ({worker.process.returncode}):\n{worker.log_tail(15)}"
        with contextlib.suppress(OSError):
            log = worker.log_path.read_text(errors="replace")
            found = re.search(r"Received unregistered task of type '([^']+)'", log)
            if found:
                return (
                    f"worker {worker.name} does not know the task {found.group(1)!r} (see {worker.log_path})"
                )
    return None


def first_error(workers: list[WorkerProcess]) -> str | None:
    """The first task error in these workers' logs (``raised unexpected: ...``), to explain a stall."""
    for worker in workers:
        with contextlib.suppress(OSError):
            found = re.search(r"raised unexpected: (.*)", worker.log_path.read_text(errors="replace"))
            if found:
                return f"{worker.name}: {found.group(1)[:300]}"
    return None


def _with_search_path(url: str, schema: str) -> str:
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
