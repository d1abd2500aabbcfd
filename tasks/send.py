"""The send task: one attempt per run; Celery's ``retry`` does the waiting between attempts."""

from __future__ import annotations

import logging

from celery import Task

from workers.app import SEND_TASK, app
from workers.engine import attempt_send
from workers.errors import UnknownMessage
from workers.ledger import get_ledger
from workers.settings import get_settings
from workers.transport import get_transport

log = logging.getLogger("wadispatch.tasks")


class SendDeferred(Exception):
    """Why a send was put off; Flower shows it as the retry's reason."""


@app.task(name=SEND_TASK, bind=True, max_retries=None, acks_late=True)
def send_message(self: Task, message_id: str) -> str:
    """Send one message by id. Returns the state the attempt left it in."""
    settings = get_settings()
    try:
        result = attempt_send(
            message_id,
            ledger=get_ledger(),
            transport=get_transport(settings),
            settings=settings,
        )
    except UnknownMessage:
        log.error("no message %s in the ledger; dropping the job", message_id)
        return "unknown_message"
    if result.retry_in is not None:
        raise self.retry(countdown=result.retry_in, exc=SendDeferred(result.describe()))
    return result.describe() if result.state == "failed" else result.state
