"""What the simulator saw: counters, the highest rates, and the log of accepted messages.

Everything is plain counters and deques touched from the event loop's thread only, so recording a
request costs a few dictionary updates.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Hashable
from typing import Any

from wadispatch.settings import PROVIDER_NAMES
from wadispatch.simulator.limits import SlidingWindows
from wadispatch.simulator.providers.base import ANSWER_KINDS, Sent

CALLBACK_COUNTERS = ("scheduled", "delivered", "failed", "dropped")


def _nested(counts: dict[Hashable, int]) -> dict[str, dict[str, int]]:
    """``{(provider, sender): n}`` → ``{provider: {sender: n}}``."""
    nested: dict[str, dict[str, int]] = {}
    for key, count in counts.items():
        provider, sender = key  # type: ignore[misc]
        nested.setdefault(provider, {})[sender] = count
    return nested


class Stats:
    """Counters since the start or the last :meth:`reset`."""

    def __init__(self, log_limit: int = 100_000) -> None:
        self._log_limit = log_limit
        self.reset()

    def reset(self) -> None:
        """Start again from zero."""
        self.started = time.time()
        self.requests: Counter[str] = Counter(dict.fromkeys(PROVIDER_NAMES, 0))
        self.requests_by_sender: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.answers: dict[str, Counter[str]] = {
            provider: Counter(dict.fromkeys(ANSWER_KINDS, 0)) for provider in PROVIDER_NAMES
        }
        self.violations: Counter[str] = Counter({"sender": 0, "pair": 0})
        self.violations_by_sender: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.request_rates = SlidingWindows(1.0)
        self.callbacks: Counter[str] = Counter(dict.fromkeys(CALLBACK_COUNTERS, 0))
        self.log: deque[dict[str, Any]] = deque(maxlen=self._log_limit)

    def resize_log(self, log_limit: int) -> None:
        """Keep at most ``log_limit`` log entries from now on (the newest stay)."""
        self._log_limit = log_limit
        self.log = deque(self.log, maxlen=log_limit)

    def request(self, provider: str, sender: str, now: float) -> None:
        """Count one request to ``provider`` from ``sender`` at monotonic time ``now``."""
        self.requests[provider] += 1
        self.requests_by_sender[provider][sender] += 1
        self.request_rates.record((provider, sender), now)

    def answer(self, provider: str, kind: str) -> None:
        """Count one answer of class ``kind``."""
        self.answers[provider][kind] += 1

    def violation(self, provider: str, sender: str, scope: str) -> None:
        """Count a request refused for going over the ``sender`` or ``pair`` limit."""
        self.violations[scope] += 1
        self.violations_by_sender[provider][sender] += 1

    def accepted(self, sent: Sent, body: Any) -> None:
        """Append an accepted message to the log."""
        if self._log_limit:
            self.log.append(
                {
                    "provider": sent.provider,
                    "sender": sent.info.sender,
                    "recipient": sent.info.recipient,
                    "provider_message_id": sent.message_id,
                    "time": sent.time,
                    "kind": sent.info.kind,
                    "body": body,
                    "post_back_data": sent.info.post_back_data,
                }
            )

    def snapshot(self, send_rates: dict[Hashable, int], *, include_log: bool = True) -> dict[str, Any]:
        """The stats as JSON-ready data; ``send_rates`` are the limiter's per-sender maxima."""
        max_send = _nested(send_rates)
        max_request = _nested(self.request_rates.max_counts())
        totals: Counter[str] = Counter(dict.fromkeys(ANSWER_KINDS, 0))
        for counts in self.answers.values():
            totals.update(counts)
        data: dict[str, Any] = {
            "uptime_seconds": round(time.time() - self.started, 3),
            "requests_total": sum(self.requests.values()),
            "requests": dict(self.requests),
            "requests_by_sender": {p: dict(c) for p, c in self.requests_by_sender.items()},
            "answers": {p: dict(c) for p, c in self.answers.items()},
            "answers_total": dict(totals),
            "limit_violations": dict(self.violations),
            "limit_violations_by_sender": {p: dict(c) for p, c in self.violations_by_sender.items()},
            "max_rate": max_send,
            "max_rate_overall": max(send_rates.values(), default=0),
            "max_request_rate": max_request,
            "callbacks": dict(self.callbacks),
            "accepted_log_size": len(self.log),
        }
        if include_log:
            data["accepted_log"] = list(self.log)
        return data
