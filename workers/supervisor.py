"""Keep a Celery worker process running: ``wadispatch worker`` runs it as a child and restarts it.

A worker whose Celery process exits on its own with an error (an unrecoverable error, a crash, a
SIGKILL from the OOM killer) is started again after a backoff: 1 s, doubling up to 30 s, back to
1 s once a child has stayed up for a while. More than ``max_restarts`` restarts within
``window_seconds`` means something is wrong that a restart does not fix (a bad setting, a broken
database): the supervisor gives up and exits with the child's code, so that the container's
restart policy (or systemd, or whoever started it) takes over and the failure shows.

SIGTERM, SIGINT and SIGQUIT are passed on to the child (Celery's warm, warm and cold shutdown) and
then the supervisor exits with the child's code, without restarting it. A child that exits with 0
by itself (``celery control shutdown``) was asked to stop: it is not restarted either.

The decisions are the pure :class:`RestartPolicy`; :func:`supervise` is the process plumbing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("wadispatch.supervisor")

#: Signals passed on to the child; after one of them the supervisor stops.
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Decision:
    """What to do after the child exited: restart it after ``delay`` seconds, or stop."""

    restart: bool
    delay: float
    reason: str


@dataclass
class RestartPolicy:
    """When and how soon to restart an exited child. Times are ``time.monotonic()`` seconds.

    ``max_restarts`` restarts are allowed within any ``window_seconds``; the next exit in that
    window stops the supervisor. Each restart waits ``backoff_initial`` seconds, doubled for every
    restart in a row, at most ``backoff_max``; a child that ran ``healthy_after`` seconds or more
    resets the doubling.
    """

    max_restarts: int = 5
    window_seconds: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    healthy_after: float = 30.0
    _restarts: deque[float] = field(default_factory=deque, init=False, repr=False)
    _in_a_row: int = field(default=0, init=False, repr=False)

    def decide(self, returncode: int, *, started_at: float, ended_at: float, stopping: bool) -> Decision:
        """The decision after a child that ran from ``started_at`` exited at ``ended_at``.

        ``stopping`` says that a stop was asked for (a signal was passed on to the child).
        """
        what = describe_exit(returncode)
        if stopping:
            return Decision(False, 0.0, f"worker {what} after a stop was asked for")
        if returncode == 0:
            return Decision(False, 0.0, f"worker {what} by itself (a remote shutdown): not restarted")
        if ended_at - started_at >= self.healthy_after:
            self._in_a_row = 0
        while self._restarts and ended_at - self._restarts[0] > self.window_seconds:
            self._restarts.popleft()
        if len(self._restarts) >= self.max_restarts:
            return Decision(
                False,
                0.0,
                f"worker {what}; {len(self._restarts)} restarts within {self.window_seconds:g} s already: "
                "giving up",
            )
        delay = min(self.backoff_max, self.backoff_initial * 2**self._in_a_row)
        self._in_a_row += 1
        self._restarts.append(ended_at + delay)
        return Decision(True, delay, f"worker {what}: restarting it in {delay:g} s")


def describe_exit(returncode: int) -> str:
    """``exited with code 1`` or ``was killed by SIGKILL`` (a Popen return code)."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def exit_code_of(returncode: int) -> int:
    """The supervisor's own exit code for a child's return code (128 + N for signal N, as a shell)."""
    return 128 - returncode if returncode < 0 else returncode


def supervise(
    argv: Sequence[str],
    policy: RestartPolicy | None = None,
    *,
    env: dict[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``argv`` as a child process and keep it running under ``policy``.

    Returns the exit code for the supervisor: the last child's (0 after a clean stop).
    Must be called from the main thread (it installs signal handlers, restored on return).
    """
    policy = policy or RestartPolicy()
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        if child is not None and child.poll() is None:
            log.info("passing %s on to the worker (pid %d)", signal.Signals(signum).name, child.pid)
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        while True:
            started_at = clock()
            # Its own process group: a Ctrl-C in a terminal reaches the supervisor only, which
            # passes it on once (a second SIGINT would turn Celery's warm shutdown into a cold one).
            child = subprocess.Popen(
                list(argv), env=env, start_new_session=True, preexec_fn=_stop_with_parent
            )
            log.info("started the worker (pid %d)", child.pid)
            if stop.is_set():  # a signal came before the child existed
                child.send_signal(signal.SIGTERM)
            returncode = child.wait()
            decision = policy.decide(
                returncode, started_at=started_at, ended_at=clock(), stopping=stop.is_set()
            )
            (log.warning if decision.restart or returncode else log.info)("%s", decision.reason)
            if not decision.restart:
                return exit_code_of(returncode)
            if stop.wait(decision.delay):
                log.info("stop asked for during the backoff: not restarting the worker")
                return exit_code_of(returncode)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child is not None and child.poll() is None:
            # Only on an error of the supervisor itself: never leave a worker behind.
            child.terminate()
            child.wait()


def _stop_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM, a warm shutdown, if the supervisor dies.

    The child has a session of its own, so a SIGKILL of the supervisor's group would miss it.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def configure_logging(loglevel: str) -> None:
    """Log the supervisor's lines to stderr, in the shape of Celery's, unless logging is set up."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter(f"[%(asctime)s: %(levelname)s/Supervisor-{os.getpid()}] %(message)s")
        )
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(loglevel.upper() if loglevel.upper() in logging.getLevelNamesMapping() else "INFO")
