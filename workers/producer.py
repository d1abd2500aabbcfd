"""Enqueue: validate, record ``pending`` in the ledger, publish a job carrying only the id.

    from wadispatch import enqueue
    result = enqueue({"provider": "meta", "sender": "1234567890", "to": "+255712345678",
                      "interactive": {...}})
    result.message_id, result.status   # "…uuid…", "pending"

Bad input raises :class:`~wadispatch.errors.MessageValidationError` and nothing is recorded or
queued. If the broker is down the message stays ``pending`` in the ledger and its id is still
returned (``published`` is ``False``). Jobs go out through :mod:`wadispatch.publishing`; nothing
here loads the engine, the limiter or an HTTP client.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wadispatch import metrics
from wadispatch.errors import FieldError, MessageValidationError
from wadispatch.ledger import Ledger, get_ledger, utcnow
from wadispatch.messages import SendRequest, validate_send_request
from wadispatch.publishing import check_configuration, publish_batches, publish_message
from wadispatch.validity import single_message_expiry


@dataclass(frozen=True)
class EnqueueResult:
    """The id of the accepted message and its state at acceptance.

    ``duplicate``: its ``idempotency_key`` was used before, and this is the first message's id and
    current state. ``published``: its job reached the broker; ``False`` when the broker was down
    (the message stays ``pending`` and is published again later).
    """

    message_id: str
    status: str
    duplicate: bool = False
    published: bool = True


def enqueue(request: SendRequest | dict[str, Any], *, ledger: Ledger | None = None) -> EnqueueResult:
    """Validate, record ``pending`` and publish the send job. Returns at once.

    With an ``idempotency_key`` already used, returns the first message's id and enqueues nothing.
    """
    started = time.monotonic()
    validated = validate_send_request(request)
    check_validity(validated)
    check_configuration()
    ledger = ledger or get_ledger()
    message_id, created = ledger.record_pending(validated)
    if not created:
        return EnqueueResult(message_id, ledger.get(message_id).state.value, duplicate=True)
    published = publish_message(message_id)
    metrics.accepted([validated.provider], "enqueue", time.monotonic() - started)
    return EnqueueResult(message_id, "pending", published=published)


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
    started = time.monotonic()
    validated: list[SendRequest] = []
    errors: list[FieldError] = []
    for index, request in enumerate(requests):
        try:
            validated.append(validate_send_request(request))
            check_validity(validated[-1])
        except MessageValidationError as exc:
            errors.extend(FieldError(f"[{index}].{error.path}", error.rule) for error in exc.errors)
    if errors:
        raise MessageValidationError(errors)
    check_configuration()
    ledger = ledger or get_ledger()
    recorded = ledger.record_pending_many(validated)
    new_ids = [message_id for message_id, created in recorded if created]
    published = set(publish_batches(new_ids, batch_size))
    duplicates = {message_id for message_id, created in recorded if not created}
    states = {message_id: ledger.get(message_id).state.value for message_id in duplicates}
    new = zip(validated, recorded, strict=False)
    providers = [request.provider for request, (_, created) in new if created]
    metrics.accepted(providers, "enqueue_many", time.monotonic() - started)
    return [
        EnqueueResult(message_id, "pending", published=message_id in published)
        if created
        else EnqueueResult(message_id, states[message_id], duplicate=True)
        for message_id, created in recorded
    ]


def check_validity(request: SendRequest) -> None:
    """Raise :class:`MessageValidationError` unless ``valid_for_seconds`` / ``expires_at`` is one
    of them, in the future, within the maximum."""
    _, errors = single_message_expiry(request.valid_for_seconds, request.expires_at, utcnow())
    if errors:
        raise MessageValidationError(errors)
