"""The simulator's decisions: which answer a request gets, and how long it waits for it.

:meth:`Simulator.handle` takes the provider, path parameters, headers and raw body of a request
and returns an :class:`Outcome` at once (no awaiting inside, so every decision about one request is
atomic on the event loop). The checks run in this order, each ending the request when it applies:

1. a scripted answer queued for the provider (and sender);
2. injected faults: drop, hang, 5xx, or a 429 storm (one random draw against the configured rates;
   a storm 429 carries ``Retry-After: rate_limited_retry_after`` and is not a limit violation);
3. credentials: missing or listed in ``rejected_credentials`` → the provider's 401;
4. the body: not JSON, or breaking the provider's rules → its 400/422;
5. the sender's throughput limit, then the (sender, recipient) pair limit → its 429 with
   ``Retry-After`` (a limit violation; refused requests are not counted as sends);
6. the recipient's fate: opted out, or the 24-hour window closed → its own error (a template
   send goes through a closed window);
7. otherwise accepted: logged, counted as a send, callbacks planned.

Every answer but a drop waits a latency drawn from the configured distribution.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wadispatch.settings import ProviderName
from wadispatch.simulator.callbacks import CallbackDispatcher
from wadispatch.simulator.config import SimulatorConfig
from wadispatch.simulator.fates import FateJudge
from wadispatch.simulator.latency import LatencySampler
from wadispatch.simulator.limits import SlidingWindows, retry_after_seconds
from wadispatch.simulator.providers import make_dialects
from wadispatch.simulator.providers.base import (
    Answer,
    AnswerKind,
    Dialect,
    InvalidRequest,
    RefusalKind,
    SendInfo,
)
from wadispatch.simulator.script import Script, ScriptedAnswer, ScriptQueue
from wadispatch.simulator.stats import Stats

_MALFORMED = object()


@dataclass(slots=True)
class Outcome:
    """How to answer one request: its class, the answer (None for hang and drop), the wait."""

    kind: AnswerKind
    answer: Answer | None
    delay: float


def _retry_after(answer: Answer, seconds: float) -> Answer:
    value = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
    answer.headers = {**(answer.headers or {}), "Retry-After": value}
    return answer


class Simulator:
    """The state of one simulated host: config, limits, counters, scripts and callbacks."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.dialects: dict[ProviderName, Dialect] = make_dialects()
        self.stats = Stats(self.config.log_limit)
        self.script = ScriptQueue()
        self.sender_windows = SlidingWindows(1.0)
        self.pair_windows = SlidingWindows(self.config.pair_window_seconds)
        self.callbacks = CallbackDispatcher(self.stats, lambda: self.config)
        self._closing: asyncio.Event | None = None
        self.apply(self.config)

    # --- lifecycle (inside the running loop) -------------------------------------------------

    async def start(self) -> None:
        """Start the background parts (the webhook poster)."""
        self._closing = asyncio.Event()
        await self.callbacks.start()

    async def close(self) -> None:
        """Release hung requests and stop the webhook poster."""
        if self._closing is not None:
            self._closing.set()
        await self.callbacks.close()

    async def hang(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the simulator is closing."""
        if self._closing is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # --- control ------------------------------------------------------------------------------

    def apply(self, config: SimulatorConfig) -> None:
        """Use ``config`` from now on (the random draws are re-seeded from ``config.seed``)."""
        if config.log_limit != self.config.log_limit:
            self.stats.resize_log(config.log_limit)
        self.config = config
        self.rng = random.Random(config.seed)
        self.latency = LatencySampler(config, self.rng)
        self.fate = FateJudge(config)
        self.pair_windows.seconds = config.pair_window_seconds
        self._rejected = frozenset(config.rejected_credentials)
        self._drop = config.drop_rate
        self._hang = config.drop_rate + config.hang_rate
        self._errors = self._hang + config.error_rate
        self._faults = self._errors + config.rate_limited_rate

    def reset(self) -> None:
        """Clear counters, log, scripts, limit windows and planned callbacks."""
        self.stats.reset()
        self.script.clear()
        self.sender_windows.clear()
        self.pair_windows.clear()
        self.callbacks.reset()

    def add_script(self, script: Script) -> int:
        """Queue scripted answers; return how many wait in that queue."""
        return self.script.add(script)

    def snapshot(self, *, include_log: bool = True) -> dict[str, Any]:
        """The stats as JSON-ready data."""
        data = self.stats.snapshot(self.sender_windows.max_counts(), include_log=include_log)
        data["callbacks"]["pending"] = self.callbacks.pending()
        if self.callbacks.last_error:
            data["callbacks"]["last_error"] = self.callbacks.last_error
        data["script_pending"] = self.script.pending()
        return data

    # --- the hot path -------------------------------------------------------------------------

    def handle(
        self,
        provider: ProviderName,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        raw: bytes,
    ) -> Outcome:
        """Decide the answer to one request (see the module docstring for the order)."""
        now = time.monotonic()
        dialect = self.dialects[provider]
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = _MALFORMED
        sender = dialect.sender_hint(params, body)
        self.stats.request(provider, sender, now)
        scripted = self.script.pop(provider, sender) if self.script else None
        if scripted is not None:
            outcome = self._scripted(dialect, scripted, sender, params, body, now)
        else:
            outcome = self._decide(dialect, params, headers, body, now)
        self.stats.answer(provider, outcome.kind)
        return outcome

    def _decide(
        self,
        dialect: Dialect,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: Any,
        now: float,
    ) -> Outcome:
        config = self.config
        if self._faults:
            draw = self.rng.random()
            if draw < self._drop:
                return Outcome("drop", None, 0.0)
            if draw < self._hang:
                return Outcome("hang", None, config.hang_seconds)
            if draw < self._errors:
                return self._refuse(dialect, "transient")
            if draw < self._faults:
                answer = _retry_after(dialect.refusal("rate_limited"), config.rate_limited_retry_after)
                return Outcome("rate_limited", answer, self._latency())
        credentials = dialect.credentials(headers)
        if not credentials or any(value in self._rejected for value in credentials):
            return self._refuse(dialect, "auth")
        if body is _MALFORMED:
            return self._refuse(dialect, "invalid", message="the body must be valid JSON")
        try:
            info = dialect.parse(params, body)
        except InvalidRequest as exc:
            return self._refuse(dialect, "invalid", field=exc.field, message=exc.message)
        provider = dialect.name
        wait = self.sender_windows.wait((provider, info.sender), config.sender_limit, now)
        if wait:
            self.stats.violation(provider, info.sender, "sender")
            answer = dialect.refusal("rate_limited")
            answer = _retry_after(answer, retry_after_seconds(wait))
            return Outcome("rate_limited", answer, self._latency())
        pair = (provider, info.sender, info.recipient or info.conversation_id)
        if config.pair_limit:
            wait = self.pair_windows.wait(pair, config.pair_limit, now)
            if wait:
                self.stats.violation(provider, info.sender, "pair")
                answer = _retry_after(dialect.pair_refusal(), retry_after_seconds(wait))
                return Outcome("rate_limited", answer, self._latency())
        fails_for: str | None = None
        if info.recipient is not None:
            fate = self.fate(info.recipient)
            if fate == "window_closed" and info.kind == "template":
                fate = "ok"  # a template reaches a closed window: that is what it is for
            elif fate == "window_closed" and config.window_closed_by_webhook and dialect.name == "meta":
                fate, fails_for = "ok", "window_closed"  # accepted now, reported failed later
            if fate != "ok":
                return self._refuse(dialect, fate)
        if config.pair_limit:
            self.pair_windows.record(pair, now)
        return self._accept(dialect, info, body, now, fails_for=fails_for)

    def _scripted(
        self,
        dialect: Dialect,
        scripted: ScriptedAnswer,
        sender: str,
        params: Mapping[str, str],
        body: Any,
        now: float,
    ) -> Outcome:
        kind = scripted.kind
        if kind == "drop":
            return Outcome("drop", None, 0.0)
        if kind == "hang":
            seconds = scripted.seconds
            return Outcome("hang", None, self.config.hang_seconds if seconds is None else seconds)
        if kind == "accepted":
            try:
                info = dialect.parse(params, body)
            except InvalidRequest:
                info = SendInfo(sender, None, "button", ())
            return self._accept(dialect, info, body, now)
        if kind == "rate_limited":
            retry_after = 1.0 if scripted.retry_after is None else scripted.retry_after
            answer = _retry_after(dialect.refusal("rate_limited"), retry_after)
            return Outcome("rate_limited", answer, self._latency())
        return self._refuse(dialect, kind)

    def _accept(
        self, dialect: Dialect, info: SendInfo, body: Any, now: float, *, fails_for: str | None = None
    ) -> Outcome:
        answer, sent = dialect.accepted(info, time.time())
        sent.fails_for = fails_for
        self.sender_windows.record((dialect.name, info.sender), now)
        self.stats.accepted(sent, body)
        url = self._webhook_url(dialect, info)
        if url is not None and info.recipient is not None:
            self.callbacks.schedule(dialect, sent, url, self.rng)
        return Outcome("accepted", answer, self._latency())

    def _refuse(
        self,
        dialect: Dialect,
        kind: RefusalKind,
        *,
        field: str | None = None,
        message: str | None = None,
    ) -> Outcome:
        return Outcome(kind, dialect.refusal(kind, field=field, message=message), self._latency())

    def _latency(self) -> float:
        return self.latency.draw()

    def _webhook_url(self, dialect: Dialect, info: SendInfo) -> str | None:
        config = self.config
        if not config.callbacks:
            return None
        if info.post_back_url and config.follow_post_back_url:
            return info.post_back_url
        return config.webhook_url_for(dialect.name)
