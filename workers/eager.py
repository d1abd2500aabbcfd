"""Eager mode: the whole send pipeline in this process, with no broker and no shared limiter.

Behind ``wadispatch send --eager`` (a first try without Redis); workers run the same engine from
the Celery tasks.
"""

from __future__ import annotations

import time
from typing import Any

from wadispatch.engine import send_batch
from wadispatch.ledger import Ledger, MessageRecord, get_ledger
from wadispatch.messages import SendRequest, validate_send_request
from wadispatch.producer import check_validity
from wadispatch.ratelimit import Unlimited
from wadispatch.settings import Settings, get_settings
from wadispatch.transport import SendLoop, get_send_loop


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
    check_validity(validated)
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
