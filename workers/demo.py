"""``wadispatch demo``: the whole system on embedded defaults, end to end, in one command.

Starts a private Valkey (unless a Redis URL is configured), a SQLite ledger in a temporary
directory, the provider simulator and a worker process; enqueues a mixed batch over the five
providers; shows live progress; prints a summary and writes a CSV of outcomes. Everything it
started is stopped when it ends, also on Ctrl-C.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from wadispatch.celery import point_app_at
from wadispatch.ledger import Ledger, MessageRecord
from wadispatch.localstack import EmbeddedRedis, WorkerProcess, stop_process_group
from wadispatch.producer import enqueue_many
from wadispatch.settings import PROVIDER_NAMES
from wadispatch.simulator import SimulatorConfig, SimulatorServer
from wadispatch.states import SETTLED, State

DEMO_CREDENTIALS = {
    "WADISPATCH_BRIQ_API_KEY": "demo-briq-key",
    "WADISPATCH_BIRD_ACCESS_KEY": "demo-bird-key",
    "WADISPATCH_ZIXFLOW_API_KEY": "demo-zixflow-key",
    "WADISPATCH_ZIXFLOW_WORKSPACE_ID": "demo-workspace",
    "WADISPATCH_WACR_TOKEN": "demo-wacr-token",
    "WADISPATCH_META_ACCESS_TOKEN": "demo-meta-token",
}


ENQUEUE_CHUNK = 100


@dataclass(frozen=True)
class DemoOptions:
    """What the demo sends and how the simulated providers behave."""

    messages: int = 2000
    senders_per_provider: int = 3
    rate: int = 80
    latency_ms: float = 150.0
    window_closed_share: float = 0.03
    opted_out_share: float = 0.02
    error_rate: float = 0.01
    concurrency: int = 8
    flower: bool = False
    flower_port: int = 5555
    out: Path = Path("demo-outcomes.csv")
    timeout: float = 150.0
    seed: int = 7


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    """Run the demo; return the exit code (0 when every message ended sent or failed)."""
    console = console or Console()
    previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="wadispatch-demo-"))
    try:
        with ExitStack() as stack:
            redis_url = _redis_url(stack, console)
            database_url = f"sqlite:///{workdir / 'ledger.sqlite3'}"
            ledger = Ledger.from_url(database_url, upgrade=True)
            stack.callback(ledger.dispose)
            queue = f"wadispatch-demo-{uuid.uuid4().hex[:8]}"
            point_app_at(redis_url, queue)

            simulator = SimulatorServer(_simulator_config(options))
            simulator.start()
            stack.callback(simulator.stop)
            console.print(f"simulator: {simulator.url} (all five providers, {options.rate}/s per sender)")

            env = {
                "WADISPATCH_REDIS_URL": redis_url,
                "WADISPATCH_DATABASE_URL": database_url,
                "WADISPATCH_QUEUE": queue,
                "WADISPATCH_BACKOFF_BASE_SECONDS": "0.5",
                "WADISPATCH_BACKOFF_CAP_SECONDS": "5",
                **simulator.base_urls(),
                **DEMO_CREDENTIALS,
            }
            worker = WorkerProcess(
                env,
                name="demo",
                concurrency=options.concurrency,
                queue=queue,
                log_dir=workdir,
            )
            stack.callback(worker.stop)
            worker.start()
            console.print(
                f"worker: threads pool, {options.concurrency} sends in flight (log: {worker.log_path})"
            )
            if options.flower:
                stack.callback(_start_flower(env, options.flower_port, workdir, console))

            return _send_and_watch(options, ledger, simulator, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping everything the demo started[/]")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _send_and_watch(
    options: DemoOptions, ledger: Ledger, simulator: SimulatorServer, console: Console
) -> int:
    started = time.monotonic()
    stop_enqueueing = threading.Event()

    def produce() -> None:
        requests = demo_requests(options)
        for start in range(0, len(requests), ENQUEUE_CHUNK):
            if stop_enqueueing.is_set():
                return
            enqueue_many(requests[start : start + ENQUEUE_CHUNK], ledger=ledger)

    producer = threading.Thread(target=produce, name="demo-producer", daemon=True)
    producer.start()
    deadline = started + options.timeout
    try:
        with (
            httpx.Client(base_url=simulator.url, timeout=5) as sim,
            Live(console=console, refresh_per_second=4) as live,
        ):
            while True:
                counts = ledger.count_by_state()
                live.update(_progress(counts, ledger, sim, time.monotonic() - started, options.messages))
                done = sum(counts.get(state, 0) for state in SETTLED)
                if not producer.is_alive() and done >= options.messages:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            elapsed = time.monotonic() - started
            rate_limited = _rate_limited_answers(sim)
    finally:
        stop_enqueueing.set()
        producer.join(timeout=10)
    records = ledger.all_messages()
    _write_csv(options.out, records)
    console.print(_summary(records, ledger, elapsed, rate_limited))
    console.print(f"outcomes of all {len(records)} messages: {options.out}")
    unsettled = [record for record in records if record.state not in SETTLED]
    if len(records) != options.messages or unsettled:
        console.print(f"[red]{len(unsettled)} message(s) not settled after {options.timeout:.0f}s[/]")
        return 1
    return 0


def demo_requests(options: DemoOptions) -> list[dict[str, Any]]:
    """The mixed batch: providers in turn, several senders each, buttons and lists."""
    rng = random.Random(options.seed)
    requests: list[dict[str, Any]] = []
    for index in range(options.messages):
        provider = PROVIDER_NAMES[index % len(PROVIDER_NAMES)]
        sender_number = (index // len(PROVIDER_NAMES)) % options.senders_per_provider
        sender = None if provider == "wacr" else f"{provider}-sender-{sender_number}"
        if provider == "meta":
            sender = f"10000000000000{sender_number}"
        recipient = f"+2557{rng.randrange(10**8):08d}"
        interactive = _buttons(index) if index % 3 else _list(index)
        requests.append({"provider": provider, "sender": sender, "to": recipient, "interactive": interactive})
    return requests


def _buttons(index: int) -> dict[str, Any]:
    return {
        "type": "button",
        "header": {"type": "text", "text": f"Ticket #{1000 + index}"},
        "body": {"text": "Did this resolve your issue?"},
        "footer": {"text": "wadispatch demo"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": f"yes-{index}", "title": "Yes"}},
                {"type": "reply", "reply": {"id": f"no-{index}", "title": "No"}},
            ]
        },
    }


def _list(index: int) -> dict[str, Any]:
    return {
        "type": "list",
        "header": {"type": "text", "text": "Main menu"},
        "body": {"text": "What would you like to do today?"},
        "action": {
            "button": "Main Menu",
            "sections": [
                {"title": "Bundles", "rows": [{"id": f"bundle-{index}", "title": "Buy bundles"}]},
                {
                    "title": "Airtime",
                    "rows": [{"id": f"airtime-{index}", "title": "Buy airtime", "description": "Top up"}],
                },
            ],
        },
    }


def _simulator_config(options: DemoOptions) -> SimulatorConfig:
    return SimulatorConfig(
        latency="lognormal",
        latency_ms=options.latency_ms,
        latency_p99_ms=options.latency_ms * 4,
        sender_limit=options.rate,
        window_closed_share=options.window_closed_share,
        opted_out_share=options.opted_out_share,
        error_rate=options.error_rate,
        callbacks=False,
        seed=options.seed,
    )


def _redis_url(stack: ExitStack, console: Console) -> str:
    configured = os.environ.get("WADISPATCH_REDIS_URL") or os.environ.get("REDIS_URL")
    if configured:
        console.print(f"redis: {configured} (configured)")
        return configured
    server = EmbeddedRedis().start()
    stack.callback(server.stop)
    console.print(f"redis: private Valkey at {server.url}")
    return server.url


def _start_flower(env: dict[str, str], port: int, workdir: Path, console: Console):
    log = (workdir / "flower.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "wadispatch",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
        ],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    console.print(f"flower: http://127.0.0.1:{port}")

    return lambda: stop_process_group(process, timeout=10)


def _rate_limited_answers(sim: httpx.Client) -> int:
    try:
        answers = sim.get("/_sim/stats", params={"log": 0}).json()["answers"]
    except (httpx.HTTPError, ValueError, KeyError):
        return 0
    return sum(by_class.get("rate_limited", 0) for by_class in answers.values())


def _progress(counts: dict[str, int], ledger: Ledger, sim: httpx.Client, elapsed: float, total: int) -> Group:
    done = sum(counts.get(state, 0) for state in SETTLED)
    table = Table(title=f"wadispatch demo: {done}/{total} settled after {elapsed:.1f}s")
    for column in ("pending", "sending", "sent", "failed", "429s seen", "retries", "messages/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(counts.get("pending", 0)),
        str(counts.get("sending", 0)),
        str(counts.get("sent", 0)),
        str(counts.get("failed", 0)),
        str(_rate_limited_answers(sim)),
        str(ledger.count_transitions(State.SENDING, State.PENDING)),
        f"{done / elapsed:.0f}" if elapsed > 0 else "-",
    )
    return Group(table)


def _summary(records: list[MessageRecord], ledger: Ledger, elapsed: float, rate_limited: int) -> Table:
    states = Counter(record.state.value for record in records)
    reasons = Counter(record.reason for record in records if record.state is State.FAILED)
    table = Table(title="summary", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_row("messages", str(len(records)))
    table.add_row("sent", str(states.get("sent", 0)))
    for reason, count in sorted(reasons.items()):
        table.add_row(f"failed: {reason}", str(count))
    unsettled = len(records) - sum(states.get(state, 0) for state in SETTLED)
    if unsettled:
        table.add_row("not settled", str(unsettled))
    table.add_row("retries", str(ledger.count_transitions(State.SENDING, State.PENDING)))
    table.add_row("429 answers", str(rate_limited))
    table.add_row("time", f"{elapsed:.1f} s")
    table.add_row("throughput", f"{len(records) / elapsed:.0f} messages/s" if elapsed else "-")
    return table


def _write_csv(path: Path, records: list[MessageRecord]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "message_id",
                "provider",
                "sender",
                "recipient",
                "state",
                "reason",
                "attempts",
                "provider_message_id",
                "provider_error_code",
                "created_at",
                "updated_at",
            ]
        )
        for record in records:
            writer.writerow(
                [
                    record.id,
                    record.provider,
                    record.sender or "",
                    record.recipient or "",
                    record.state.value,
                    record.reason or "",
                    record.attempts,
                    record.provider_message_id or "",
                    record.provider_error_code or "",
                    record.created_at.isoformat(),
                    record.updated_at.isoformat(),
                ]
            )


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
