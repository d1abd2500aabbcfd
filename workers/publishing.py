"""Every job wadispatch publishes to the broker goes out through this module.

    publish_message(message_id)         the send job of one enqueued message (straight to Redis:
                                        see below)
    publish_batches(message_ids)        send-batch jobs over one pooled connection (enqueue_many,
                                        the reconciler, a campaign's fan-out)
    publish_later(later)                send-batch jobs, with countdowns, for messages to try again
    publish_job(task, args)             any other job: a campaign's fan-out task, a user's event
                                        task, a dead letter's replay

A broken Celery setting raises :class:`~wadispatch.errors.ConfigurationError` (see
:func:`check_configuration`). A broker failure is reported one way: logged here, once, with how
many jobs were not published and how many messages they carried, which stay ``pending`` in the
ledger and are published again later (the reconciler, ``wadispatch campaign resume``). The
functions return what went out (``False``, or the ids published). A caller that must fail
instead (the campaign fan-out task, so that Celery retries it) passes ``raise_on_failure=True``
and gets a :class:`PublishError`.

The send job of one message (``enqueue()``, once per message) skips most of Celery's publish:
Celery's own ``send_task`` is captured once, for a placeholder message, and each job is then
written from that capture by :class:`~wadispatch.redisjobs.RedisJobs` (kombu's producer on a
kept Redis client, the job and its ``task-sent`` event in one round trip): the same message
Celery would write, at a third of its cost. Where that cannot give Celery's own message (another
broker than Redis, a result backend, a receiver of Celery's publish signals such as a tracing
library, a call from inside a running task) and when the direct write fails, the job goes
through ``send_task`` as every other job does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import signals
from celery.utils.time import utcoffset
from wadispatch.celery import SEND_BATCH_TASK, SEND_TASK, app
from wadispatch.errors import ConfigurationError, WadispatchError
from wadispatch.later import Later, group_later
from wadispatch.redisjobs import (
    ARGUMENT_MARK,
    CHECK_ARGUMENT,
    CHECK_TASK_ID,
    TASK_ID_MARK,
    Captured,
    CapturingProducer,
    RedisJobs,
)
from wadispatch.settings import get_settings

log = logging.getLogger("wadispatch.publishing")


class PublishError(WadispatchError):
    """The broker could not be reached: ``jobs`` jobs were not published.

    The ``messages`` message ids they carried stay ``pending`` in the ledger.
    """

    def __init__(self, jobs: int, messages: int) -> None:
        self.jobs = jobs
        self.messages = messages
        super().__init__(f"could not publish {jobs} job(s); {messages} message(s) stay pending")


@dataclass(frozen=True)
class Job:
    """One task to publish: its name and arguments, with an optional countdown and queue."""

    task: str
    args: list[Any]
    message_ids: Sequence[str] = ()
    """The message ids the job carries (they stay pending if it is not published)."""
    countdown: float | None = None
    queue: str | None = None
    """``None``: the task's route (``WADISPATCH_QUEUE`` for wadispatch's own tasks)."""


#: Jobs written to Redis in one pipelined round trip (with their ``task-sent`` events): about
#: 2.7x faster than one round trip each (1,000 send-batch jobs: 0.88 -> 0.32 s here).
PUBLISH_CHUNK = 100
#: Redis commands per chunk (a job, its event), so that kombu flushes a chunk once, at its end.
_BATCH_COMMANDS = PUBLISH_CHUNK * 4


def publish_jobs(jobs: Sequence[Job], *, about: str = "", raise_on_failure: bool = False) -> int:
    """Publish jobs in order over one pooled broker connection; return how many went out.

    With the broker down it stops at the first failure, logs it (``about`` says what the jobs
    are for, by id, never a phone number) and returns, or raises :class:`PublishError` with
    ``raise_on_failure``.
    """
    if not jobs:
        return 0
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for start in range(0, len(jobs), PUBLISH_CHUNK):
                chunk = jobs[start : start + PUBLISH_CHUNK]
                # One pipelined write per chunk on Redis (kombu's batch; others publish at once).
                # A chunk counts as sent once written: on a failure it all stays pending.
                with producer.batch(max_size=_BATCH_COMMANDS):
                    for job in chunk:
                        options: dict[str, Any] = {"queue": job.queue} if job.queue else {}
                        app.send_task(
                            job.task, args=job.args, countdown=job.countdown, producer=producer, **options
                        )
                sent += len(chunk)
    except ConfigurationError:
        raise  # a broken setting is the operator's to fix, not a broker outage to wait out
    except Exception as exc:  # kombu/redis raise many kinds
        error = _report(jobs[sent:], exc, about)
        if raise_on_failure:
            raise error from exc
    return sent


def check_configuration() -> None:
    """Load the Celery settings now: :class:`~wadispatch.errors.ConfigurationError` when a
    ``WADISPATCH_CELERY_*`` value or the module ``WADISPATCH_CELERY_CONFIG`` names is broken.

    Producers call it before they record anything, so that a broken setting is reported to the
    caller instead of leaving messages pending that no job can ever carry.
    """
    _ = app.conf.broker_url


def publish_job(
    task: str,
    args: list[Any],
    *,
    queue: str | None = None,
    about: str = "",
    raise_on_failure: bool = False,
) -> bool:
    """Publish one job; ``False`` if the broker is down (see :func:`publish_jobs`)."""
    job = Job(task, args, queue=queue)
    return publish_jobs([job], about=about, raise_on_failure=raise_on_failure) == 1


def publish_message(message_id: str) -> bool:
    """Publish the ``wadispatch.send_message`` job of a recorded message; ``False`` if the broker
    is down (the message stays pending).

    Written straight to Redis where that gives Celery's own message (see the module's docstring);
    through Celery's ``send_task`` otherwise, or when the direct write fails.
    """
    writer = _send_jobs.get() if _direct_allowed() else None
    if writer is not None:
        try:
            writer.publish(message_id)
            return True
        except Exception as exc:  # Celery's publish below retries as configured, and reports
            log.debug("direct publish of a send job failed (%s): through Celery", type(exc).__name__)
    return publish_jobs([Job(SEND_TASK, [message_id], (message_id,))]) == 1


def publish_batches(
    message_ids: Sequence[str], batch_size: int | None = None, *, raise_on_failure: bool = False
) -> list[str]:
    """Publish ``wadispatch.send_batch`` jobs of ``batch_size`` ids (default
    ``WADISPATCH_SEND_BATCH_SIZE``) over one pooled broker connection; return the ids that went out.

    With the broker down it stops at the first failure: the rest stay pending in the ledger.
    """
    size = batch_size or get_settings().send_batch_size
    chunks = [list(message_ids[start : start + size]) for start in range(0, len(message_ids), size)]
    sent = publish_jobs(
        [Job(SEND_BATCH_TASK, [chunk], chunk) for chunk in chunks], raise_on_failure=raise_on_failure
    )
    return [message_id for chunk in chunks[:sent] for message_id in chunk]


def publish_many(message_ids: list[str], batch_size: int | None = None) -> int:
    """Publish send-batch jobs for recorded messages; return how many ids went out.

    Publishes again messages whose job was lost (the reconciler).
    """
    return len(publish_batches(message_ids, batch_size))


def publish_later(later: list[Later]) -> list[str]:
    """Publish send-batch jobs for messages to try again, grouped by when they fall due; return
    the ids that went out (the rest stay pending, for the reconciler)."""
    groups = group_later(later, get_settings().send_batch_size)
    sent = publish_jobs([Job(SEND_BATCH_TASK, [ids], ids, countdown) for countdown, ids in groups])
    return [message_id for _, ids in groups[:sent] for message_id in ids]


def _direct_allowed() -> bool:
    """Whether a send job may skip ``send_task``: no one listens to Celery's publish signals (a
    tracing library adds its headers there) and no task is running here (its job would carry the
    running task as parent)."""
    return not (
        signals.before_task_publish.receivers
        or signals.after_task_publish.receivers
        or signals.task_sent.receivers
        or getattr(app, "current_worker_task", None) is not None
    )


class _SendJobs:
    """This process's direct writer of send jobs: built on first use, dropped when the app's
    broker connections are reset (``point_app_at``, a fork)."""

    RETRY_SECONDS = 1.0
    """After a failed build (broker down), how long ``send_task`` is used before trying again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._writer: RedisJobs | None = None
        self._connection: Any = None
        self._retry_at: float | None = 0.0
        """When to try building again; ``None``: never (the configuration does not allow it)."""

    def get(self) -> RedisJobs | None:
        """The writer, or ``None`` while send jobs go through ``send_task``."""
        if self._pid == os.getpid() and (self._writer is not None or self._retry_at is None):
            return self._writer
        with self._lock:
            if self._pid != os.getpid():
                self._forget()  # a forked child builds its own
                self._pid = os.getpid()
            if self._writer is None and self._retry_at is not None and time.monotonic() >= self._retry_at:
                self._build()
            return self._writer

    def reset(self, *_: Any, **__: Any) -> None:
        """Drop the writer (the app was pointed at another broker or queue)."""
        with self._lock:
            if self._pid == os.getpid():
                self._close()
            self._forget()

    def _build(self) -> None:
        try:
            if app.conf.result_backend:
                self._retry_at = None  # Celery's publish registers each task with the backend
                return
            connection = app.connection_for_write()
        except ConfigurationError:
            raise
        except Exception as exc:
            self._retry_at = None
            log.debug("send jobs are published through Celery: %s", type(exc).__name__)
            return
        try:
            writer = RedisJobs.build(
                connection,
                _captured(connection, TASK_ID_MARK, ARGUMENT_MARK),
                _captured(connection, CHECK_TASK_ID, CHECK_ARGUMENT),
                reply_to=lambda: app.thread_oid,
                clock=app.clock.forward,
                utcoffset=utcoffset,
            )
        except ConfigurationError:
            connection.close()
            raise
        except Exception as exc:  # the broker is down: send_task for a while, then try again
            connection.close()
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            log.debug("no direct publish of send jobs for now: %s", type(exc).__name__)
            return
        if writer is None:
            connection.close()
            self._retry_at = None
            log.debug("send jobs are published through Celery: no direct write gives its message here")
            return
        self._writer, self._connection = writer, connection

    def _close(self) -> None:
        for closing in (self._writer, self._connection):
            if closing is not None:
                try:
                    closing.close()
                except Exception as exc:
                    log.debug("closing the send job writer: %s", type(exc).__name__)

    def _forget(self) -> None:
        self._writer = self._connection = None
        self._retry_at = 0.0


def _captured(connection: Any, task_id: str, argument: str) -> list[Captured]:
    """What Celery's ``send_task`` hands its producer for the send job of ``argument``."""
    producer = CapturingProducer(connection)
    app.send_task(SEND_TASK, args=[argument], task_id=task_id, producer=producer)
    return producer.captured


_send_jobs = _SendJobs()
app.on_after_fork.connect(_send_jobs.reset, weak=False)


def _report(unsent: Sequence[Job], exc: Exception, about: str) -> PublishError:
    """Log a broker failure once, with what stays unpublished; the error to raise if asked."""
    messages = sum(len(job.message_ids) for job in unsent)
    log.warning(
        "could not publish %d job(s) of %s%s%s: %s",
        len(unsent),
        ", ".join(sorted({job.task for job in unsent})),
        f" ({about})" if about else "",
        f"; {messages} message(s) stay pending" if messages else "",
        type(exc).__name__,
    )
    return PublishError(len(unsent), messages)
