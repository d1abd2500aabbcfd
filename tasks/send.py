"""The send tasks: one attempt per run; Celery countdowns do the waiting between attempts."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.worker.request import Request
from wadispatch.celery import SEND_BATCH_TASK, SEND_TASK, app
from wadispatch.deadletters import INVALID_ARGUMENTS, UNKNOWN_MESSAGE, build_dead_letter, safe_headers, store
from wadispatch.engine import BatchResult, send_batch
from wadispatch.errors import WadispatchError
from wadispatch.events import emit_expired, emit_window_closed
from wadispatch.inbox import apply_early
from wadispatch.ledger import get_ledger
from wadispatch.publishing import publish_later
from wadispatch.ratelimit import get_limiter
from wadispatch.settings import get_settings
from wadispatch.transport import get_send_loop
from wadispatch.window import get_windows

log = logging.getLogger("wadispatch.tasks")

MAX_WRAPPERS = 5


class SendDeferred(WadispatchError):
    """Why a send was put off; Flower shows it as the retry's reason."""


class DeferringRequest(Request):
    """A send job's request whose retries Flower shows as one line: the reason, no traceback.

    A deferral is the job working as designed (a rate limit, a provider asking to wait), not an
    error: Celery's own ``task-retried`` event would carry the traceback of the ``Retry`` raised.
    """

    def on_retry(self, exc_info: Any) -> None:
        if self.task.acks_late:
            self.acknowledge()
        reason = exc_info.exception
        # The pools wrap it (billiard's ExceptionWithTraceback, Retry in Retry): the innermost is ours.
        for _ in range(MAX_WRAPPERS):
            inner = getattr(reason, "exc", None)
            if not isinstance(inner, BaseException):
                break
            reason = inner
        self.send_event("task-retried", exception=f"{type(reason).__name__}: {reason}", traceback="")


def _attempt(task: Task, message_ids: list[str]) -> BatchResult:
    settings = get_settings()
    if not _is_id_list(message_ids):
        _dead_letter(task, INVALID_ARGUMENTS, [message_ids], "expected a list of message ids")
        return BatchResult()
    result = send_batch(
        message_ids,
        ledger=get_ledger(),
        limiter=get_limiter(settings),
        loop=get_send_loop(settings),
        settings=settings,
        windows=get_windows(settings),
    )
    if result.closed_windows:
        emit_window_closed(result.closed_windows, settings)
    if result.expired:
        emit_expired(result.expired, settings)
    if result.early_events:
        apply_early(
            result.early_events, ledger=get_ledger(), windows=get_windows(settings), settings=settings
        )
    if result.skipped:
        log.info("skipped %d message(s) no longer pending (already handled)", len(result.skipped))
    if result.unknown:
        _dead_letter(task, UNKNOWN_MESSAGE, [result.unknown], f"{len(result.unknown)} unknown message id(s)")
    return result


def _is_id_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _dead_letter(task: Task, reason: str, args: list[object], error: str) -> None:
    """Keep a poison job's arguments in the dead-letter store; the task then returns normally."""
    request = task.request
    letter = build_dead_letter(
        reason,
        settings=get_settings(),
        args=args,
        task=task.name,
        queue=(request.delivery_info or {}).get("routing_key"),
        headers=safe_headers({"task": task.name, "id": request.id, "retries": request.retries}),
        error=error,
    )
    store(get_ledger(), letter)


@app.task(name=SEND_TASK, bind=True, max_retries=None, acks_late=True, Request=DeferringRequest)
def send_message(self: Task, message_id: str) -> str:
    """Send one message by id (a web app's enqueue). Returns what the attempt did."""
    result = _attempt(self, [message_id] if isinstance(message_id, str) else message_id)
    if result.later:
        later = result.later[0]
        raise self.retry(countdown=later.delay, exc=SendDeferred(f"{later.reason}: {later.description}"))
    return result.summary()


@app.task(name=SEND_BATCH_TASK, bind=True, acks_late=True)
def send_batch_task(self: Task, message_ids: list[str]) -> str:
    """Send a batch of messages by id (bulk enqueue). Those to try again go out as new jobs."""
    result = _attempt(self, message_ids)
    if result.later:
        publish_later(result.later)
    return result.summary()
