"""``POST /v1/messages/interactive`` and ``GET /v1/messages/{id}``.

The body is Briq's interactive endpoint body (``to`` + ``sender``, or ``conversation_id``, and
``interactive``) plus ``provider`` (and optional ``metadata``); it is checked by the very code the
producer uses (:func:`wadispatch.producer.enqueue`), so a 422 lists the same ``{path, rule}`` errors
as :class:`~wadispatch.errors.MessageValidationError`, and then nothing is recorded.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool
from wadispatch.api.auth import ApiKey
from wadispatch.api.errors import ApiError, json_object, read_body
from wadispatch.api.models import ERROR_RESPONSES, Accepted, ErrorBody, MessageOut
from wadispatch.errors import FieldError, MessageValidationError, UnknownMessage
from wadispatch.messages import IDEMPOTENCY_KEY_MAX
from wadispatch.producer import enqueue

router = APIRouter(prefix="/v1/messages", tags=["messages"])

REQUEST_SCHEMA = "InteractiveMessageRequest"


@router.post(
    "/interactive",
    status_code=202,
    response_model=Accepted,
    responses={
        **ERROR_RESPONSES,
        422: {"model": ErrorBody, "description": "Invalid message: every problem."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{REQUEST_SCHEMA}"}}},
        }
    },
)
async def enqueue_interactive(
    request: Request,
    _key: ApiKey,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=IDEMPOTENCY_KEY_MAX,
            description="The same key returns the first message's id and sends nothing more.",
        ),
    ] = None,
) -> Accepted:
    """Accept an interactive message for sending: 202 with its id, status `pending`."""
    data = json_object(await read_body(request, request.app.state.settings.api_max_body_bytes))
    if idempotency_key is not None:
        in_body = data.get("idempotency_key")
        if in_body is not None and in_body != idempotency_key:
            rule = "differs from the Idempotency-Key header (give one or the other)"
            raise ApiError(422, "invalid_request", "1 problem(s)", [FieldError("idempotency_key", rule)])
        data["idempotency_key"] = idempotency_key
    try:
        result = await run_in_threadpool(enqueue, data, ledger=request.app.state.ledger)
    except MessageValidationError as exc:
        raise ApiError(422, "invalid_request", f"{len(exc.errors)} problem(s)", exc.errors) from None
    return Accepted(message_id=result.message_id, status=result.status, duplicate=result.duplicate)


@router.get(
    "/{message_id}",
    response_model=MessageOut,
    responses={401: ERROR_RESPONSES[401], 404: {"model": ErrorBody, "description": "No such message."}},
)
async def get_message(message_id: str, request: Request, _key: ApiKey) -> MessageOut:
    """A message's state, reason, provider ids, attempts, reply and every transition."""
    ledger = request.app.state.ledger

    def load() -> MessageOut:
        record = ledger.get(message_id)
        return MessageOut.of(record, ledger.transitions(message_id))

    try:
        return await run_in_threadpool(load)
    except UnknownMessage:
        raise ApiError(404, "not_found", f"no message {message_id}") from None
