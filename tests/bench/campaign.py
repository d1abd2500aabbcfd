"""The ``campaign`` scenario's accepting processes, each run alone so its peak RSS is its own.

    python -m tests.bench.campaign project FILE --database-url URL --redis-url URL --queue Q [--senders N]
    python -m tests.bench.campaign naive FILE --redis-url URL --queue Q
    python -m tests.bench.campaign generate FILE --rows N

``project`` accepts FILE the way ``wadispatch campaign send --detach`` does
(:func:`wadispatch.campaigns.api.create_campaign`: read, fill, check, normalise, record in batches),
then runs the fan-out task's body (:func:`wadispatch.campaigns.fanout.fan_out`) in the same process
to publish every send job to Redis: accepted means in the ledger *and* queued. ``naive`` is the
loop a first Celery script would be: for each row, fill the template with ``str.format`` and
``.delay()`` one task carrying the recipient's whole provider request (no check, no record).
Each prints one JSON object of figures on stdout; ``peak_rss_mb`` is the process's peak
resident memory (``VmHWM``).
"""

from __future__ import annotations

import csv
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

TEMPLATE: dict[str, Any] = {
    "type": "button",
    "body": {"text": "Hi {name}, your order {order} is ready to collect"},
    "footer": {"text": "Reply to choose"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "yes-{order}", "title": "Yes {name}"}},
            {"type": "reply", "reply": {"id": "later-{order}", "title": "Later"}},
        ]
    },
}
SENDER = "1000000000000001"
FIRST_NUMBER = 255_700_000_000
"""Recipients are +255700000000 onwards (valid Tanzanian mobile numbers)."""


def generate(path: Path, rows: int, seed: int = 5) -> None:
    """A CSV of ``rows`` distinct recipients with a name and an order number each, written streaming."""
    rng = random.Random(seed)
    names = ["Ann", "Baraka", "Chausiku", "Daudi", "Eshe", "Faraji", "Gift", "Halima"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        for index in range(rows):
            writer.writerow([f"+{FIRST_NUMBER + index}", rng.choice(names), str(100_000 + index)])


def accept_project(
    path: Path, database_url: str, redis_url: str, queue: str, senders: int = 1
) -> dict[str, Any]:
    """``senders`` over 1: a pool of that many senders (each row's sender assigned as it is read)."""
    from wadispatch.campaigns import api
    from wadispatch.campaigns.fanout import fan_out
    from wadispatch.celery import point_app_at
    from wadispatch.ledger import Ledger
    from wadispatch.settings import Settings

    point_app_at(redis_url, queue)
    settings = Settings(database_url=database_url, redis_url=redis_url, queue=queue)
    ledger = Ledger.from_url(database_url)
    started = time.perf_counter()
    campaign = api.create_campaign(
        path,
        TEMPLATE,
        provider="meta",
        **(
            {"sender": SENDER}
            if senders == 1
            else {"senders": [str(int(SENDER) + i) for i in range(senders)]}
        ),
        ledger=ledger,
        settings=settings,
        dispatch=lambda *_: True,  # fanned out below, in this process, to time it
    )
    read = time.perf_counter()
    published = fan_out(
        ledger,
        campaign.id,
        1,
        None,
        job_size=settings.send_batch_size,
        page_size=settings.campaign_fanout_page_size,
    )
    finished = time.perf_counter()
    ledger.dispose()
    return {
        "rows": campaign.rows_read,
        "accepted": campaign.accepted,
        "queued": published,
        "jobs": -(-published // settings.send_batch_size),
        "seconds": round(finished - started, 3),
        "ingest_seconds": round(read - started, 3),
        "fanout_seconds": round(finished - read, 3),
        "per_s": campaign.accepted / (finished - started),
        "peak_rss_mb": _peak_rss_mb(),
    }


def accept_naive(path: Path, redis_url: str, queue: str, limit: int | None) -> dict[str, Any]:
    from tests.bench import naive

    naive.point_at(redis_url, queue)
    url = "http://127.0.0.1:9/v23.0/" + SENDER + "/messages"
    headers = {"Authorization": "Bearer naive-token", "Content-Type": "application/json"}
    body_text = TEMPLATE["body"]["text"]
    count = 0
    started = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if limit is not None and count >= limit:
                break
            interactive = json.loads(json.dumps(TEMPLATE))
            interactive["body"]["text"] = body_text.format(**row)
            for button in interactive["action"]["buttons"]:
                button["reply"] = {key: value.format(**row) for key, value in button["reply"].items()}
            body = {
                "messaging_product": "whatsapp",
                "to": row["phone"].lstrip("+"),
                "type": "interactive",
                "interactive": interactive,
            }
            naive.send.delay(url, body, headers)
            count += 1
    elapsed = time.perf_counter() - started
    return {
        "rows": count,
        "accepted": count,
        "queued": count,
        "jobs": count,
        "seconds": round(elapsed, 3),
        "per_s": count / elapsed,
        "peak_rss_mb": _peak_rss_mb(),
    }


def run(
    mode: str,
    path: Path,
    database_url: str,
    redis_url: str,
    queue: str,
    *,
    limit: int | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Run one accepting process (``project`` or ``naive``) on its own; its figures."""
    import subprocess

    command = [sys.executable, "-m", "tests.bench.campaign", mode, str(path), "--redis-url", redis_url]
    command += ["--queue", queue, "--database-url", database_url]
    if limit is not None:
        command += ["--limit", str(limit)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} accepting process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    """This process's peak resident memory.

    Linux's ``ru_maxrss`` survives ``exec``: a child started by a big parent reports at least the
    parent's size when it forked. ``VmHWM`` belongs to this program's own memory map.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench.campaign")
    parser.add_argument("mode", choices=["project", "naive", "generate"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--queue", default="bench-campaign")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--senders", type=int, default=1, help="project: a pool of this many senders")
    args = parser.parse_args(argv)
    if args.mode == "generate":
        generate(args.file, args.rows)
        return 0
    if args.mode == "project":
        figures = accept_project(args.file, args.database_url, args.redis_url, args.queue, args.senders)
    else:
        figures = accept_naive(args.file, args.redis_url, args.queue, args.limit)
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
