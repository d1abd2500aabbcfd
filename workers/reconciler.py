"""One reconciler run as beat and ``wadispatch reconcile`` start it: lock, look at the queue, run.

1. Take the queue's lock (:class:`~wadispatch.runlock.RunLock`); a run that finds it held reports
   ``locked_out`` and returns at once: overlapping runs would only compete for the same rows.
2. Look at the queue (:func:`~wadispatch.liveness.look`): its workers' heartbeats and its length.
3. :func:`~wadispatch.reconcile.reconcile`, holding back republishing if nobody consumes the
   queue, renewing the lock after every page.

With Redis unreachable there is no lock and nothing to publish to: the run still does what
needs no broker (the conditional UPDATEs keep two such runs apart) and holds back the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from wadispatch.liveness import look, redis_client
from wadispatch.reconcile import Publish, ReconcileReport, reconcile
from wadispatch.runlock import RunLock

if TYPE_CHECKING:
    from redis import Redis
    from wadispatch.ledger import Ledger
    from wadispatch.settings import Settings

log = logging.getLogger("wadispatch.reconcile")

BROKER_UNREACHABLE = "broker unreachable"


def run_once(
    ledger: Ledger,
    settings: Settings,
    publish: Publish,
    *,
    client: Redis | None = None,
    broker_url: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ReconcileReport:
    """One guarded reconciler run; its report (``locked_out`` when another run holds the lock).

    ``client``: the broker's Redis (default: a client on ``broker_url``, the Celery app's broker).
    """
    started = time.perf_counter()
    own = client is None
    redis = client if client is not None else redis_client(broker_url or _broker_url())
    lock = RunLock(redis, settings.queue, settings.reconcile_lock_seconds)
    try:
        report = _run(ledger, settings, publish, redis, lock, dry_run=dry_run, now=now)
    finally:
        if own:
            redis.close()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _run(
    ledger: Ledger,
    settings: Settings,
    publish: Publish,
    redis: Redis,
    lock: RunLock,
    *,
    dry_run: bool,
    now: datetime | None,
) -> ReconcileReport:
    locked = False
    try:
        locked = dry_run or lock.acquire()  # a dry run changes nothing: it needs no lock
        if not locked:
            holder = lock.holder()
            log.info("reconciler: skipped, another run holds the lock (%s)", holder)
            return ReconcileReport(locked_out=True, lock_holder=holder)
        queue = look(redis, settings.queue, settings.heartbeat_timeout_seconds)
    except Exception as exc:  # redis raises many kinds
        if locked and not dry_run:
            _release(lock)
        log.warning("reconciler: Redis unreachable (%s): republishing holds back", type(exc).__name__)
        report = reconcile(ledger, settings, publish, now=now, dry_run=dry_run, hold=BROKER_UNREACHABLE)
        report.lock_holder = f"no lock: {BROKER_UNREACHABLE}"
        return report
    try:
        return reconcile(
            ledger,
            settings,
            publish,
            now=now,
            dry_run=dry_run,
            queue=queue,
            keep_alive=None if dry_run else _renewer(lock),
        )
    finally:
        if not dry_run:
            _release(lock)


def _renewer(lock: RunLock) -> Callable[[], None]:
    warned = False

    def renew() -> None:
        nonlocal warned
        try:
            kept = lock.renew()
        except Exception:  # Redis went away mid-run: the conditional UPDATEs still keep runs apart
            kept = False
        if not kept and not warned:
            warned = True
            log.warning("reconciler: lost its lock mid-run (expired or Redis away); going on")

    return renew


def _release(lock: RunLock) -> None:
    try:
        lock.release()
    except Exception as exc:  # it expires by itself
        log.warning("reconciler: could not release its lock: %s", type(exc).__name__)


def _broker_url() -> str:
    from wadispatch.celery import app

    return str(app.conf.broker_url)
