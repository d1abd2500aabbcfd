"""The public enqueue API for web apps and scripts.

    from wadispatch.producer import enqueue
    result = enqueue({"provider": "meta", "sender": "1234567890", "to": "+255712345678",
                      "interactive": {...}})
    result.message_id, result.status   # "…uuid…", "pending"

:func:`enqueue` validates, records ``pending`` in the ledger and publishes a job carrying only the
message id. Bad input raises :class:`~wadispatch.errors.MessageValidationError` and nothing is
recorded or queued. If the broker is down the message stays ``pending`` in the ledger and its id
is still returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wadispatch.celery import SEND_BATCH_TASK, SEND_TASK, app
from wadispatch.engine import Later, group_later, send_batch
from wadispatch.errors import FieldError, MessageValidationError
from wadispatch.ledger import Ledger, MessageRecord, get_ledger
from wadispatch.messages import SendRequest, validate_send_request
from wadispatch.ratelimit import Unlimited
from wadispatch.settings import Settings, get_settings
from wadispatch.transport import SendLoop, get_send_loop

log = logging.getLogger("wadispatch.producer")


@dataclass(frozen=True)
class EnqueueResult:
    """The id of the accepted message and its state at acceptance."""

    message_id: str
    status: str
    duplicate: bool = False
    published: bool = True


def enqueue(request: SendRequest | dict[str, Any], *, ledger: Ledger | None = None) -> EnqueueResult:
    """Validate, record ``pending`` and publish the send job. Returns at once.

    With an ``idempotency_key`` already used, returns the first message's id and enqueues nothing.
    """
    validated = validate_send_request(request)
    ledger = ledger or get_ledger()
    message_id, created = ledger.record_pending(validated)
    if not created:
        return EnqueueResult(message_id, ledger.get(message_id).state.value, duplicate=True)
    return EnqueueResult(message_id, "pending", published=publish(message_id))


def enqueue_many(
    requests: Iterable[SendRequest | dict[str, Any]],
    *,
    ledger: Ledger | None = None,
    batch_size: int = 100,
) -> list[EnqueueResult]:
    """Validate, record and publish many messages at once: all of them or, on bad input, none.

    Validation errors name the request's index, e.g. ``[17].to: must be an E.164 phone number``.
    Messages are recorded in one transaction and published ``batch_size`` ids per job, so a
    worker sends a job's messages concurrently with a handful of ledger writes.
    """
    validated: list[SendRequest] = []
    errors: list[FieldError] = []
    for index, request in enumerate(requests):
        try:
            validated.append(validate_send_request(request))
        except MessageValidationError as exc:
            errors.extend(FieldError(f"[{index}].{error.path}", error.rule) for error in exc.errors)
    if errors:
        raise MessageValidationError(errors)
    ledger = ledger or get_ledger()
    recorded = ledger.record_pending_many(validated)
    new_ids = [message_id for message_id, created in recorded if created]
    published = set(publish_batches(new_ids, batch_size))
    duplicates = {message_id for message_id, created in recorded if not created}
    states = {message_id: ledger.get(message_id).state.value for message_id in duplicates}
    return [
        EnqueueResult(message_id, "pending", published=message_id in published)
        if created
        else EnqueueResult(message_id, states[message_id], duplicate=True)
        for message_id, created in recorded
    ]


def publish(message_id: str) -> bool:
    """Publish the send job for a recorded message; ``False`` (logged) if the broker is down."""
    return _send_job(SEND_TASK, message_id)


def publish_later(later: list[Later]) -> None:
    """Publish jobs for messages to try again, grouped by when they fall due."""
    for countdown, message_ids in group_later(later, get_settings().send_batch_size):
        _send_job(SEND_BATCH_TASK, message_ids, countdown=countdown)


def _send_job(task: str, ids: str | list[str], *, countdown: float | None = None) -> bool:
    """Publish one job; ``False`` (logged) if the broker is down: the ledger keeps the messages
    pending, and they are published again later."""
    try:
        app.send_task(task, args=[ids], countdown=countdown)
    except Exception as exc:  # kombu/redis raise many kinds
        count = 1 if isinstance(ids, str) else len(ids)
        log.warning("could not publish %d message(s), they stay pending: %s", count, type(exc).__name__)
        return False
    return True


def send_eagerly(
    request: SendRequest | dict[str, Any],
    *,
    ledger: Ledger | None = None,
    loop: SendLoop | None = None,
    settings: Settings | None = None,
    max_wait_seconds: float = 120.0,
) -> MessageRecord:
    """Run the whole pipeline in this process, no broker nor shared limiter: record, send, retry.

    Retries sleep in this process, up to ``max_wait_seconds`` in all; a message still waiting
    after that is left ``pending`` (its record says when it falls due).
    """
    settings = settings or get_settings()
    validated = validate_send_request(request)
    ledger = ledger or get_ledger(settings.database_url)
    loop = loop or get_send_loop(settings)
    message_id, _ = ledger.record_pending(validated)
    deadline = time.monotonic() + max_wait_seconds
    limiter = Unlimited()
    while True:
        result = send_batch([message_id], ledger=ledger, limiter=limiter, loop=loop, settings=settings)
        if not result.later or time.monotonic() + result.later[0].delay > deadline:
            return ledger.get(message_id)
        time.sleep(result.later[0].delay)


def publish_many(message_ids: list[str], batch_size: int | None = None) -> int:
    """Publish send-batch jobs for recorded messages; return how many ids went out.

    Used to publish again messages whose job was lost (the reconciler, a dead-letter replay).
    """
    return len(publish_batches(message_ids, batch_size))


def publish_batches(message_ids: list[str], batch_size: int | None = None) -> list[str]:
    """Publish send-batch jobs of ``batch_size`` ids over one pooled broker connection; return
    the ids that went out. With the broker down it stops at the first failure (logged): the rest
    stay pending in the ledger and are published again later."""
    size = batch_size or get_settings().send_batch_size
    published: list[str] = []
    try:
        with app.producer_or_acquire() as producer:
            for start in range(0, len(message_ids), size):
                chunk = message_ids[start : start + size]
                app.send_task(SEND_BATCH_TASK, args=[chunk], producer=producer)
                published += chunk
    except Exception as exc:  # kombu/redis raise many kinds
        left = len(message_ids) - len(published)
        log.warning("could not publish %d message(s), they stay pending: %s", left, type(exc).__name__)
    return published
