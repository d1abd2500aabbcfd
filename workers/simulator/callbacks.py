"""Status callbacks and simulated user replies, posted in the background.

When a message is accepted, its events are planned at once; each is handed to a bounded queue when
it falls due (``loop.call_later``, ``callback_delay_ms`` after the previous one was posted, so one
message's events arrive in order), and a few worker tasks post them through one shared
``aiohttp.ClientSession``. The answer to the send never waits for any of this. A full queue drops
the event, a failed post is counted; neither raises.

The plan of one message, one ``callback_delay_ms`` apart: ``sent`` (not for Zixflow), then either
``failed`` (a ``failed_share`` of messages, and every message accepted for a closed window with
``window_closed_by_webhook``) or ``delivered``, ``read`` (a ``read_share`` of the
delivered) and a reply (a ``reply_share`` of the read), which picks one of the message's buttons or
rows at random.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp
from wadispatch.simulator.config import SimulatorConfig
from wadispatch.simulator.providers.base import Choice, Dialect, Sent
from wadispatch.simulator.stats import Stats

logger = logging.getLogger(__name__)

Step = Literal["sent", "delivered", "read", "failed", "reply"]


@dataclass(slots=True)
class _Due:
    """One message's remaining events; ``index`` is the next one to post."""

    generation: int
    dialect: Dialect
    sent: Sent
    url: str
    steps: list[tuple[Step, Choice | None]]
    index: int = 0


class CallbackDispatcher:
    """Plans, queues and posts webhook events; start it inside the running loop."""

    def __init__(self, stats: Stats, config: Callable[[], SimulatorConfig]) -> None:
        self._stats = stats
        self._config = config
        self._generation = 0
        self._queue: asyncio.Queue[_Due] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.last_error: str | None = None

    async def start(self) -> None:
        """Open the HTTP session and start the posting tasks."""
        config = self._config()
        self._queue = asyncio.Queue(maxsize=config.webhook_queue_size)
        connector = aiohttp.TCPConnector(limit=config.webhook_concurrency)
        self._session = aiohttp.ClientSession(connector=connector)
        self._workers = [
            asyncio.create_task(self._work(), name=f"sim-callbacks-{index}")
            for index in range(config.webhook_concurrency)
        ]

    async def close(self) -> None:
        """Stop posting and close the session (pending events are abandoned)."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def reset(self) -> None:
        """Forget every planned event (those already due are dropped when their turn comes)."""
        self._generation += 1
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()

    def pending(self) -> int:
        """Events due and waiting to be posted."""
        return self._queue.qsize() if self._queue is not None else 0

    def schedule(self, dialect: Dialect, sent: Sent, url: str, rng: random.Random) -> None:
        """Plan the events of an accepted message, posted to ``url`` as they fall due."""
        config = self._config()
        steps: list[tuple[Step, Choice | None]] = []
        if dialect.reports_sent:
            steps.append(("sent", None))
        if sent.fails_for is not None or (config.failed_share and rng.random() < config.failed_share):
            steps.append(("failed", None))
        else:
            steps.append(("delivered", None))
            if rng.random() < config.read_share:
                steps.append(("read", None))
                choices = sent.info.choices
                if choices and config.reply_share and rng.random() < config.reply_share:
                    steps.append(("reply", rng.choice(choices)))
        due = _Due(self._generation, dialect, sent, url, steps)
        asyncio.get_running_loop().call_later(self._delay(), self._enqueue, due)
        self._stats.callbacks["scheduled"] += len(steps)

    def _delay(self) -> float:
        return self._config().callback_delay_ms / 1000.0

    def _enqueue(self, due: _Due) -> None:
        if due.generation != self._generation or self._queue is None:
            return
        try:
            self._queue.put_nowait(due)
        except asyncio.QueueFull:
            self._stats.callbacks["dropped"] += len(due.steps) - due.index

    async def _work(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            due = await self._queue.get()
            if due.generation != self._generation:
                continue
            try:
                ok = await self._post(due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the receiver is counted, never raised
                ok = False
                self.last_error = f"{type(exc).__name__}: {exc}"
            if due.generation != self._generation:
                continue
            self._stats.callbacks["delivered" if ok else "failed"] += 1
            due.index += 1
            # The next event is planned only once this one is posted: one message's events
            # arrive in order even with no delay and many posting tasks.
            if due.index < len(due.steps):
                loop.call_later(self._delay(), self._enqueue, due)

    async def _post(self, due: _Due) -> bool:
        assert self._session is not None
        config = self._config()
        now = time.time()
        step, choice = due.steps[due.index]
        if step == "reply":
            assert choice is not None
            body = due.dialect.reply_event(due.sent, choice, now)
        else:
            body = due.dialect.status_event(due.sent, step, now)
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        headers.update(due.dialect.signature_headers(raw, due.url, config))
        timeout = aiohttp.ClientTimeout(total=config.webhook_timeout_seconds)
        async with self._session.post(due.url, data=raw, headers=headers, timeout=timeout) as resp:
            await resp.read()
            if 200 <= resp.status < 300:
                return True
            self.last_error = f"HTTP {resp.status} from {due.url}"
            return False
