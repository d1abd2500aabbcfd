"""The benchmark: wadispatch against its references, side by side, in one run.

    make bench                                     # everything; figures in bench-results/latest.json
    python -m tests.bench throughput storm       # some scenarios, in that order
    python -m tests.bench --quick --json out.json  # small counts: a smoke test

Every scenario runs the project and its reference(s) against the provider simulator on 127.0.0.1,
the simulator in a process of its own (``python -m wadispatch.simulator``) so that it never shares a
GIL with the load generator, and prints one table with the ratios against the issue's targets:

``throughput``
    5,000 Meta messages over 50 senders, 100 ms latency, no limit. The project
    (``enqueue_many`` here, then 1 and 2 real worker processes with the project's default pool and
    concurrency, ``WADISPATCH_DEFAULT_RATE=1000000``) timed to the ledger showing every message
    settled, its transitions checked, with its workers' and the whole machine's CPU per message;
    against (a) a bare aiohttp loop with 1,000 in flight and (b) a naive Celery task per message
    (:mod:`tests.bench.naive`, prefork ``-c 2``) on 400 messages. Targets (2 workers): project /
    (a) >= 0.75 (0.65 with ``--database-url``), box CPU per message <= 1.6x (a)'s, project / (b) >= 25.
``precision``
    one sender limited to 50/s by the simulator, two workers, ``WADISPATCH_DEFAULT_RATE=50``, 3,000
    messages: the rate of accepted sends at the simulator (target 50/s ± 5 %), the most in any
    second, and the 429s (target 0); against Celery's ``rate_limit="50/s"`` on 500 messages.
``paced``
    the simulator refusing more than the limit in any sliding second per sender: 10 senders at
    80/s over 2 workers (every sender >= 0.95 of its limit, no 429, CPU per message no higher
    than the same messages unpaced) and 1 sender at 100/s over 4 workers (>= 0.97, no 429, never
    more than the limit in a second) (:mod:`tests.bench.paced`).
``learn``
    one sender declared at 80/s whose provider allows 5/s, 300 messages: the share of requests
    answered 429 (<= 5 %) and the time against the true limit's (<= 1.2x) (:mod:`tests.bench.learn`).
``storm``
    2,000 messages with 30 % of requests answered 429 ``Retry-After: 1``, and the same without the
    storm: every message sent, none failed, attempts per message (median, p99), time against time.
``enqueue``
    accepting 20,000 messages with no worker: ``enqueue()`` one by one and ``enqueue_many()`` in one
    call, against ``.delay()`` one by one.
``campaign``
    accepting a 100,000-row campaign CSV with no worker (in the ledger and every send job queued:
    ``create_campaign`` then the fan-out task's body, in a process of its own) against a naive loop
    of ``.delay()`` per recipient carrying its whole provider request (timed on 20,000 rows), and the
    peak RSS of accepting a 1,000,000-row file generated on the fly. Targets: ≥ 10,000 recipients/s,
    peak RSS < 250 MB.
``reconcile``
    one reconciler run over 100,000 overdue pending messages of 5 senders and 1,000 stuck sending
    (:mod:`tests.bench.reconcile`), on SQLite and, with ``--database-url``, PostgreSQL: the run, its
    database time per 10,000 rows touched (target < 0.5 s), a run with nothing to do, a run held
    back for want of a worker.

Redis is ``--redis-url`` or ``REDIS_URL`` when set, else a private Valkey; every ledger is a fresh
SQLite file (or, with ``--database-url``, a fresh schema in that PostgreSQL database, dropped after).
Everything started is stopped at the end, also on errors and Ctrl-C; every wait is bounded.
"""

from tests.bench.options import SCENARIOS, BenchOptions, Sizes
from tests.bench.runner import run_bench

__all__ = ["SCENARIOS", "BenchOptions", "Sizes", "run_bench"]
