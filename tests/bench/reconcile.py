"""The ``reconcile`` scenario: one reconciler run over a ledger of 100,000 overdue pending messages.

The ledger holds ``Sizes.reconcile`` pending messages over ``Sizes.reconcile_senders`` senders,
recorded in batches of 5,000 sharing a time (as an ingest records them), untouched for an hour,
plus ``Sizes.reconcile_stuck`` claims of a dead worker stuck in ``sending`` (half of them after
their request left). Timed, each through :func:`wadispatch.reconciler.run_once` (lock, a look at
the queue, the run) with a live heartbeat and the jobs published to the bench's Redis:

- ``full``: the run that republishes every one and settles the stuck ones;
- ``idle``: the next run, with nothing left to do;
- ``held``: a run an hour later with no worker alive, counting what it holds back (read only).

``db_s`` is the run's time less the time spent publishing; ``per_10k_s`` is that per 10,000 rows
touched. SQLite always; PostgreSQL too with ``--database-url``.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from wadispatch.celery import point_app_at
from wadispatch.ledger import Ledger, messages, utcnow
from wadispatch.messages import validate_send_request

from tests.bench.results import Column, Ratio, Run, ScenarioResult
from tests.bench.workload import meta_requests

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.bench.scenarios import Context

PER_10K_TARGET_S = 0.5
"""Database time per 10,000 rows a run touches ("well under a second")."""
CHUNK = 5000

COLUMNS = [
    Column("rows", "rows touched", "int"),
    Column("full_s", "full run", "seconds"),
    Column("db_s", "of it database", "seconds"),
    Column("publish_s", "of it publishing", "seconds"),
    Column("per_10k_s", "db per 10,000 rows", "seconds"),
    Column("idle_s", "run, nothing to do", "seconds"),
    Column("held_s", "run, held back", "seconds"),
    Column("check", "check", "text"),
]


def fill(ledger: Ledger, pending: int, senders: int, stuck: int) -> None:
    """Record the scenario's ledger: overdue pending messages and a dead worker's stuck claims."""
    started = utcnow() - timedelta(hours=1)
    requests = meta_requests(pending + stuck, senders, seed=31, batch=uuid.uuid4().int % 1000)
    for index, start in enumerate(range(0, pending, CHUNK)):
        chunk = [validate_send_request(r) for r in requests[start : min(start + CHUNK, pending)]]
        ledger.record_pending_many(chunk, now=started + timedelta(seconds=index))
    claimed = [validate_send_request(r) for r in requests[pending:]]
    ids = [message_id for message_id, _ in ledger.record_pending_many(claimed, now=started)]
    ledger.claim_many(ledger.load_pending(ids), now=started)
    with ledger.begin() as conn:  # half of them died after their request left
        conn.execute(
            update(messages).where(messages.c.id.in_(ids[: stuck // 2])).values(requested_at=started)
        )
    ledger.analyze_messages()


def measure(url: str, redis_url: str, queue: str, pending: int, senders: int, stuck: int) -> dict[str, Any]:
    """Fill a ledger at ``url`` and time the three runs; their figures."""
    import redis
    from wadispatch.liveness import beat, heartbeat_key
    from wadispatch.publishing import publish_many
    from wadispatch.reconciler import run_once
    from wadispatch.settings import Settings

    point_app_at(redis_url, queue)
    # Messages an hour old: a day's age limit keeps the dead worker's claims to be sent again.
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        queue=queue,
        reconcile_max_queued_jobs=0,
        max_age_seconds=86_400,
    )
    ledger = Ledger.from_url(url)
    client = redis.Redis.from_url(redis_url)
    publishing = [0.0]

    def publish(message_ids: list[str]) -> int:
        begun = time.perf_counter()
        try:
            return publish_many(message_ids)
        finally:
            publishing[0] += time.perf_counter() - begun

    try:
        begun = time.perf_counter()
        fill(ledger, pending, senders, stuck)
        fill_s = time.perf_counter() - begun
        beat(client, [queue], "bench@reconcile")
        now = utcnow()
        full = run_once(ledger, settings, publish, client=client, now=now)
        full_publish_s = publishing[0]
        idle = run_once(ledger, settings, publish, client=client, now=now + timedelta(seconds=1))
        client.delete(heartbeat_key(queue))
        held = run_once(ledger, settings, publish, client=client, now=now + timedelta(hours=1))
        queued = client.llen(queue)
    finally:
        client.close()
        ledger.dispose()
    rows = full.republished + full.never_requested + full.stuck_failed
    db_s = (full.seconds or 0.0) - full_publish_s
    return {
        "rows": rows,
        "fill_s": round(fill_s, 1),
        "full_s": full.seconds,
        "publish_s": round(full_publish_s, 3),
        "db_s": round(db_s, 3),
        "per_10k_s": round(db_s / rows * 10_000, 3) if rows else None,
        "idle_s": idle.seconds,
        "held_s": held.seconds,
        "check": f"{queued:,} jobs queued, {held.held_back:,} held back",
        "ok": (
            rows == pending + stuck
            and idle.republished == 0
            # The never-requested claims went back to pending in the full run: overdue again too.
            and held.held_back == pending + full.never_requested
            and held.republished == 0
        ),
    }


@contextmanager
def _sqlite(ctx: Context, label: str) -> Iterator[str]:
    path = ctx.stack.workdir / f"ledger-{label}-{uuid.uuid4().hex[:6]}.sqlite3"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


def reconcile_scenario(ctx: Context, result: ScenarioResult) -> None:
    """One reconciler run over 100,000 overdue pending messages, on SQLite and on PostgreSQL."""
    sizes, stack = ctx.options.sizes, ctx.stack
    result.title = (
        f"reconcile: one run over {sizes.reconcile:,} overdue pending messages of "
        f"{sizes.reconcile_senders} senders and {sizes.reconcile_stuck:,} stuck sending"
    )
    result.columns = COLUMNS
    backends = [("sqlite", "SQLite", lambda label: _sqlite(ctx, label))]
    if ctx.options.database_url:
        backends.append(("postgresql", "PostgreSQL", lambda label: _schema(ctx, label)))
    for key, label, database in backends:
        queue = stack.queue(f"reconcile-{key}")
        try:
            with database(f"reconcile-{key}") as url:
                ctx.progress(f"reconcile: {label}, filling {sizes.reconcile:,} messages")
                figures = measure(
                    url,
                    stack.redis_url,
                    queue,
                    sizes.reconcile,
                    sizes.reconcile_senders,
                    sizes.reconcile_stuck,
                )
        finally:
            stack.purge(queue)
        if not figures.pop("ok"):
            figures["error"] = "the runs did not do what they should (see check)"
        result.runs.append(Run(key, label, figures))
        result.ratios.append(
            Ratio(
                f"{key}_per_10k",
                f"{label}: database time per 10,000 rows",
                figures["per_10k_s"],
                "per_10k_s",
                f"< {PER_10K_TARGET_S} s",
                figures["per_10k_s"] is not None and figures["per_10k_s"] < PER_10K_TARGET_S,
                "seconds",
                maximum=PER_10K_TARGET_S,
            )
        )
    result.notes += [
        "each run through wadispatch.reconciler.run_once: the lock, a look at the queue, the run",
        "full: every message republished (jobs to Redis) and touched, the stuck ones settled; "
        "idle: the next run; held: an hour later with no worker heartbeat (counts, touches nothing)",
        "database time: the run's time less the time spent publishing",
    ]


@contextmanager
def _schema(ctx: Context, label: str) -> Iterator[str]:
    with ctx.stack.database(label) as (url, _):
        yield url
