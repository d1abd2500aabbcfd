"""The worker's consumer, dead-lettering poison jobs instead of dropping them.

Celery's consumer logs and acks (or rejects) a job it cannot decode, whose task is unknown or
whose shape is invalid, so the job is gone. This subclass stores it first (see
:mod:`wadispatch.deadletters`), then lets Celery carry on as before. Any other error while reading
a job (e.g. a JSON body that is not ``[args, kwargs, embed]``) would escape into the consumer's
loop; it is dead-lettered and acked here, so one bad job cannot stop the worker.

Wired in through the ``worker_consumer`` setting (celeryconfig.py).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer
from vine import promise
from wadispatch import deadletters
from wadispatch.ledger import get_ledger
from wadispatch.settings import get_settings

log = logging.getLogger("wadispatch.poison")


def dead_letter_message(message: Any, reason: str, error: BaseException | str | None) -> None:
    """Store a kombu message as a dead letter (its decoded arguments when it can be decoded).

    Never raises: the consumer's loop must go on even when the ledger cannot be reached.
    """
    try:
        _dead_letter_message(message, reason, error)
    except Exception:
        log.exception("could not dead-letter a job (%s)", reason)


def _dead_letter_message(message: Any, reason: str, error: BaseException | str | None) -> None:
    # message.decode() honours the consumer's accept list (JSON): a pickle body is refused, never loaded.
    headers = message.headers if isinstance(message.headers, dict) else {}
    args = None
    if reason != deadletters.UNDECODABLE:
        try:
            payload = message.decode()
            if isinstance(payload, list | tuple) and payload and isinstance(payload[0], list):
                args = payload[0]
        except Exception:  # undecodable after all: kept as raw body, not replayable
            args = None
    letter = deadletters.build_dead_letter(
        reason,
        settings=get_settings(),
        body=message.body,
        args=args,
        task=headers.get("task") if isinstance(headers.get("task"), str) else None,
        queue=(message.delivery_info or {}).get("routing_key"),
        headers=deadletters.safe_headers(
            headers, content_type=message.content_type, content_encoding=message.content_encoding
        ),
        error=error,
    )
    deadletters.store(get_ledger(), letter)


class DeadLetteringConsumer(Consumer):
    """Celery's consumer, storing every job it would drop in the dead-letter store."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        dead_letter_message(message, deadletters.UNDECODABLE, exc)
        super().on_decode_error(message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        dead_letter_message(message, deadletters.INVALID_JOB, exc)
        super().on_invalid_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        dead_letter_message(message, deadletters.INVALID_JOB, "not a Celery task message")
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        dead_letter_message(message, deadletters.UNKNOWN_TASK, exc)
        super().on_unknown_task(body, message, exc)

    def create_task_handler(self, promise: Any = promise) -> Any:
        handler = super().create_task_handler(promise)

        def on_task_received(message: Any) -> Any:
            try:
                return handler(message)
            except Exception as exc:
                if message.acknowledged:
                    raise
                log.error("a job could not be read (%s): dead-lettered", type(exc).__name__)
                dead_letter_message(message, deadletters.INVALID_JOB, exc)
                message.ack()
                return None

        return on_task_received
