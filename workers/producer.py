"""The public enqueue API for web apps and scripts.

    from workers.producer import enqueue
    result = enqueue({"provider": "meta", "sender": "1234567890", "to": "+255712345678",
                      "interactive": {...}})
    result.message_id, result.status   # "…uuid…", "pending"

:func:`enqueue` validates, records ``pending`` in the ledger and publishes a job carrying only the
message id. Bad input raises :class:`~workers.errors.MessageValidationError` and nothing is
recorded or queued. If the broker is down the message stays ``pending`` in the ledger and its id
is still returned.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from workers.engine import attempt_send
from workers.ledger import Ledger, MessageRecord, get_ledger
from workers.messages import SendRequest, validate_send_request
from workers.settings import Settings, get_settings
from workers.transport import Transport, get_transport

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


def publish(message_id: str) -> bool:
    """Publish the send job for a recorded message; ``False`` (logged) if the broker is down."""
    from workers.app import SEND_TASK, app

    try:
        app.send_task(SEND_TASK, args=[message_id])
    except Exception as exc:  # kombu/redis raise many kinds; the ledger keeps the message
        log.warning("could not publish %s, it stays pending: %s", message_id, type(exc).__name__)
        return False
    return True


def send_eagerly(
    request: SendRequest | dict[str, Any],
    *,
    ledger: Ledger | None = None,
    transport: Transport | None = None,
    settings: Settings | None = None,
    max_wait_seconds: float = 120.0,
) -> MessageRecord:
    """Run the whole pipeline in this process, no broker: record, send, retry, return the record.

    Retries sleep in this process, up to ``max_wait_seconds`` in all; a message still waiting
    after that is left ``pending`` (its record says when it falls due).
    """
    settings = settings or get_settings()
    validated = validate_send_request(request)
    ledger = ledger or get_ledger(settings.database_url)
    transport = transport or get_transport(settings)
    message_id, _ = ledger.record_pending(validated)
    deadline = time.monotonic() + max_wait_seconds
    while True:
        result = attempt_send(message_id, ledger=ledger, transport=transport, settings=settings)
        if result.retry_in is None or time.monotonic() + result.retry_in > deadline:
            return ledger.get(message_id)
        time.sleep(result.retry_in)
