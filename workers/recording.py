"""The ledger kept as it happens: each request marked just before it leaves, each answer recorded
as it arrives, written together every few milliseconds.

One :class:`Recorder` per send loop (so per worker process). Send coroutines hand it a mark or a
settling change and await the flush that writes it. Flushes run one at a time on a thread of
their own, one transaction each, so the event loop never waits on the database and the ledger
lags the provider by a flush, not by a batch: a worker killed mid-batch loses at most the answers
of the last few milliseconds, and the ledger still tells a message never requested (its claim
has no ``requested_at``) from one whose request was on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from wadispatch.ledger import Change, Ledger, MessageRecord, utcnow
from wadispatch.ledger.lifecycle import Progress
from wadispatch.ledger.webhooks import EarlyApplied
from wadispatch.settings import Settings
from wadispatch.transport import SendLoop

log = logging.getLogger("wadispatch.recording")

#: Longest pause between two tries of a flush the database refused for want of a connection.
MAX_RETRY_PAUSE_SECONDS = 2.0


@dataclass(frozen=True)
class Settlement:
    """How recording one attempt's result went."""

    applied: bool
    """``False`` when the message had already moved on (stale): nothing was written."""
    early: list[EarlyApplied]
    """Webhook events that had come for it before its send was recorded, applied now."""


@dataclass
class _Flush:
    claims: list[tuple[str, datetime]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    done: asyncio.Future[Progress] | None = None


class Recorder:
    """Writes the marks and outcomes of one event loop's sends, batched by time.

    ``interval`` is how long a flush gathers after its first item; ``retry_seconds`` how long a
    flush keeps trying while the database is unreachable (a restart) before it gives up.
    """

    def __init__(
        self, ledger: Ledger, loop: asyncio.AbstractEventLoop, *, interval: float, retry_seconds: float
    ) -> None:
        self.ledger = ledger
        self._loop = loop
        self._interval = interval
        self._retry_seconds = retry_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wadispatch-recorder")
        self._gathering: _Flush | None = None

    async def mark_requested(self, record: MessageRecord) -> bool:
        """Record that the claimed message's request is about to leave; ``False`` when its claim
        was taken back meanwhile (then the request must not leave). Call on the loop."""
        flush = self._gathering_flush()
        flush.claims.append((record.id, record.updated_at))
        progress = await asyncio.shield(flush.done)  # type: ignore[arg-type]
        return record.id in progress.marked

    async def settle(self, change: Change) -> Settlement:
        """Record an attempt's result, with the webhook events that had come for it early."""
        flush = self._gathering_flush()
        flush.changes.append(change)
        progress = await asyncio.shield(flush.done)  # type: ignore[arg-type]
        early = [event for event in progress.early if event.message.id == change.message_id]
        return Settlement(applied=change.message_id not in progress.stale, early=early)

    def close(self) -> None:
        """Wait for the flush being written, then stop the writing thread."""
        self._executor.shutdown(wait=True)

    def _gathering_flush(self) -> _Flush:
        flush = self._gathering
        if flush is None:
            flush = self._gathering = _Flush(done=self._loop.create_future())
            self._loop.call_later(self._interval, self._write_soon, flush)
        return flush

    def _write_soon(self, flush: _Flush) -> None:
        self._gathering = None
        written = self._loop.run_in_executor(self._executor, self._write, flush.claims, flush.changes)
        written.add_done_callback(lambda result: _pass_on(result, flush.done))  # type: ignore[arg-type]

    def _write(self, claims: list[tuple[str, datetime]], changes: list[Change]) -> Progress:
        """One flush, tried again while the database cannot be reached (runs on the writing thread).

        A try that failed at COMMIT may have been written after all; trying again is still safe:
        a mark is made only on an unmarked claim and a change only from its ``from_state``, so the
        second try finds them done, reports them as not marked (the request is then not sent) or
        stale, and nothing is written twice.
        """
        deadline = time.monotonic() + self._retry_seconds
        pause = 0.05
        while True:
            try:
                return self.ledger.record_progress(claims, changes, now=utcnow())
            except DBAPIError as exc:
                if not _is_connection_trouble(exc) or time.monotonic() + pause > deadline:
                    raise
                log.warning("ledger unavailable (%s); retrying in %.2fs", type(exc.orig).__name__, pause)
                time.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_PAUSE_SECONDS)


_recorders: dict[tuple[int, int], tuple[SendLoop, Ledger, Recorder]] = {}
_recorders_lock = threading.Lock()


def recorder_for(loop: SendLoop, ledger: Ledger, settings: Settings) -> Recorder:
    """The recorder of this send loop's sends into this ledger (made on first use)."""
    key = (id(loop), id(ledger))
    with _recorders_lock:
        known = _recorders.get(key)
        if known is None:
            recorder = Recorder(
                ledger,
                loop.loop,
                interval=settings.record_flush_seconds,
                retry_seconds=settings.record_retry_seconds,
            )
            known = _recorders[key] = (loop, ledger, recorder)  # keeps both alive: ids stay unique
        return known[2]


def _is_connection_trouble(exc: DBAPIError) -> bool:
    """A lost or refused connection, or SQLite busy: worth another try, unlike a bad statement."""
    return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))


def _pass_on(result: asyncio.Future[Progress], done: asyncio.Future[Progress]) -> None:
    if done.cancelled():
        return
    error = result.exception()
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result.result())
