"""The benchmark's knobs: message counts per scenario (full and ``--quick``) and time bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = ("throughput", "precision", "paced", "learn", "storm", "enqueue", "campaign", "reconcile")


@dataclass(frozen=True)
class Sizes:
    """Message counts of every scenario."""

    throughput: int = 5000
    throughput_senders: int = 50
    throughput_naive: int = 400
    throughput_in_flight: int = 1000
    precision: int = 3000
    precision_naive: int = 500
    storm: int = 2000
    storm_senders: int = 20
    paced: int = 8000
    paced_senders: int = 10
    paced_rate: int = 80
    paced_one: int = 3000
    paced_one_rate: int = 100
    paced_one_workers: int = 4
    learn: int = 300
    """Messages of the sender declared far above its true limit."""
    learn_limit: int = 5
    """That sender's true limit (the simulator's, messages/s)."""
    enqueue: int = 20_000
    campaign: int = 100_000
    """Recipients of the campaign acceptance run (the target: at least 20,000 a second)."""
    campaign_naive: int = 20_000
    """Recipients the naive ``.delay()`` loop is timed on (its rate is per recipient)."""
    campaign_memory: int = 1_000_000
    """Rows of the memory check (the target: peak RSS at most 150 MB)."""
    reconcile: int = 100_000
    """Overdue pending messages of the reconciler run."""
    reconcile_senders: int = 5
    reconcile_stuck: int = 1000
    """Claims of a dead worker stuck in ``sending`` (half of them after their request left)."""

    @classmethod
    def quick(cls) -> Sizes:
        """Small counts for a smoke test: the same code paths in a fraction of the time."""
        return cls(
            throughput=300,
            throughput_naive=50,
            throughput_in_flight=200,
            precision=300,
            precision_naive=50,
            storm=200,
            paced=240,
            paced_one=100,
            paced_one_workers=2,
            learn=60,
            enqueue=1000,
            campaign=3000,
            campaign_naive=500,
            campaign_memory=10_000,
            reconcile=3000,
            reconcile_stuck=60,
        )


@dataclass(frozen=True)
class BenchOptions:
    """What one ``python -m tests.bench`` run does."""

    scenarios: tuple[str, ...] = SCENARIOS
    sizes: Sizes = field(default_factory=Sizes)
    quick: bool = False
    json_path: Path | None = None
    redis_url: str | None = None
    """The broker; None starts a private Valkey (``REDIS_URL`` is read by the command line)."""
    database_url: str | None = None
    """A PostgreSQL URL for the ledger (each run in a schema of its own); None: a SQLite file per run."""
    timeout: float = 300.0
    """The longest a project run may take before it is reported incomplete."""
    reference_timeout: float = 120.0
    """The longest a naive Celery reference may take (its rate is computed from what it did)."""
    stall_seconds: float = 30.0
    """A project run with no message settling for this long is given up."""
    naive_pool: str = "prefork"
    """The pool of the naive reference of ``throughput`` (b) (Celery's default)."""
    naive_concurrency: int = 2
    limited_workers: int = 2
    """Worker processes (nodes) of the ``precision`` reference, Celery's ``rate_limit``: as many as the
    project's, since Celery counts the limit per node."""
    limited_pool: str = "threads"
    limited_concurrency: int = 25
    """Enough in flight for 50/s at 100 ms; a prefork ``-c 2`` node tops out at 20/s by itself."""
    naive_client: str = "shared"
    """``shared``: one kept-alive ``httpx.Client`` per naive worker process; ``post``: ``httpx.post()``."""
    keep: bool = False
    """Keep the work directory (worker logs, ledgers) even when every run went well."""
    strict: bool = False
    """Exit 1 when a target is missed (not only when a scenario fails)."""
