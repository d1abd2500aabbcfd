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
from wadispatch.errors import WadispatchError
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


class NotRecorded(WadispatchError):
    """The ledger did not take a mark or a result (the database refused or stayed away)."""


@dataclass(frozen=True)
class _Written:
    progress: Progress
    failed: set[str]
    """Ids whose mark or result the database refused on its own."""


@dataclass
class _Flush:
    claims: list[tuple[str, datetime]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    done: asyncio.Future[_Written] | None = None


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
        was taken back meanwhile (then the request must not leave). Call on the loop.

        Raises :class:`NotRecorded` when the database would not take the mark."""
        flush = self._gathering_flush()
        flush.claims.append((record.id, record.updated_at))
        written = await asyncio.shield(flush.done)  # type: ignore[arg-type]
        if record.id in written.failed:
            raise NotRecorded(f"the ledger refused the mark of {record.id}")
        return record.id in written.progress.marked

    async def settle(self, change: Change) -> Settlement:
        """Record an attempt's result, with the webhook events that had come for it early.

        Raises :class:`NotRecorded` when the database would not take it."""
        flush = self._gathering_flush()
        flush.changes.append(change)
        written = await asyncio.shield(flush.done)  # type: ignore[arg-type]
        if change.message_id in written.failed:
            raise NotRecorded(f"the ledger refused the result of {change.message_id}")
        progress = written.progress
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
        done = flush.done
        assert done is not None
        # The retry time counts from now, not from when the writing thread gets to this flush:
        # flushes queue up behind one that waits for the database.
        deadline = time.monotonic() + self._retry_seconds
        try:
            written = self._loop.run_in_executor(
                self._executor, self._write, flush.claims, flush.changes, deadline
            )
        except RuntimeError as exc:  # the recorder was closed: nobody may wait for ever
            done.set_exception(NotRecorded(f"the recorder is closed ({exc})"))
            return
        written.add_done_callback(lambda result: _pass_on(result, done))

    def _write(self, claims: list[tuple[str, datetime]], changes: list[Change], deadline: float) -> _Written:
        """One flush (on the writing thread). When the database refuses it for a reason other than
        being unreachable (a value it will not store), the writes are tried one by one, so that
        only the one at fault fails, not every send that shared its flush."""
        try:
            return _Written(self._record(claims, changes, deadline), set())
        except Exception as exc:
            trouble = isinstance(exc, DBAPIError) and _is_connection_trouble(exc)
            if trouble or len(claims) + len(changes) == 1:
                raise
            log.warning(
                "a flush of %d writes failed (%s); writing them one by one",
                len(claims) + len(changes),
                type(exc).__name__,
            )
        marked: set[str] = set()
        stale: set[str] = set()
        early: list[EarlyApplied] = []
        failed: set[str] = set()
        for claim in claims:
            try:
                marked |= self._record([claim], [], deadline).marked
            except Exception:
                log.exception("the ledger refused the mark of %s", claim[0])
                failed.add(claim[0])
        for change in changes:
            try:
                progress = self._record([], [change], deadline)
            except Exception:
                log.exception("the ledger refused the result of %s", change.message_id)
                failed.add(change.message_id)
                continue
            stale |= progress.stale
            early += progress.early
        return _Written(Progress(marked, stale, early), failed)

    def _record(self, claims: list[tuple[str, datetime]], changes: list[Change], deadline: float) -> Progress:
        """Write, trying again while the database cannot be reached, until ``deadline``.

        A try that failed at COMMIT may have been written after all; trying again is still safe:
        a mark already made under the same claim counts as made, a change is made only from its
        ``from_state`` (found stale the second time), and nothing is written twice.
        """
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


def _pass_on(result: asyncio.Future[_Written], done: asyncio.Future[_Written]) -> None:
    if done.done():
        return
    if result.cancelled():
        done.set_exception(NotRecorded("the flush was cancelled"))
    elif (error := result.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(result.result())
