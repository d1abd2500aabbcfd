"""Scripted answers: tests queue the exact answers the next requests to a provider get.

``POST /_sim/script`` with ``{"provider": "briq", "sender": "optional", "answers": [{"kind":
"rate_limited", "retry_after": 1}, {"kind": "accepted"}, ...]}``. Each request to that provider
(and sender, when scoped) takes the next answer, rendered in the provider's own format, before any
other rule applies; when the queue is empty the normal behaviour resumes. A sender-scoped queue is
used before the provider-wide one.
"""

from __future__ import annotations

from collections import deque

from pydantic import BaseModel, ConfigDict, Field
from wadispatch.settings import ProviderName
from wadispatch.simulator.providers.base import AnswerKind


class ScriptedAnswer(BaseModel):
    """One scripted answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AnswerKind
    retry_after: float | None = Field(default=None, ge=0)
    """``rate_limited``: the ``Retry-After`` value in seconds (default 1)."""
    seconds: float | None = Field(default=None, ge=0)
    """``hang``: how long to hold the request (default: the config's ``hang_seconds``)."""


class Script(BaseModel):
    """The body of ``POST /_sim/script``."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName
    sender: str | None = None
    answers: list[ScriptedAnswer] = Field(min_length=1)


class ScriptQueue:
    """Queued answers per (provider, sender or None)."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str | None], deque[ScriptedAnswer]] = {}

    def __bool__(self) -> bool:
        return bool(self._queues)

    def add(self, script: Script) -> int:
        """Append the script's answers; return how many wait in that queue now."""
        queue = self._queues.setdefault((script.provider, script.sender), deque())
        queue.extend(script.answers)
        return len(queue)

    def pop(self, provider: str, sender: str) -> ScriptedAnswer | None:
        """The next answer for this request, or None to behave normally."""
        for key in ((provider, sender), (provider, None)):
            queue = self._queues.get(key)
            if queue:
                answer = queue.popleft()
                if not queue:
                    del self._queues[key]
                return answer
        return None

    def pending(self) -> dict[str, int]:
        """How many answers wait, by ``provider`` or ``provider:sender``."""
        return {
            provider if sender is None else f"{provider}:{sender}": len(queue)
            for (provider, sender), queue in self._queues.items()
        }

    def clear(self) -> None:
        """Drop every queued answer."""
        self._queues.clear()
