"""Events for the user's own code: a Celery task per event type, named in the settings.

    WADISPATCH_EVENT_TASKS='{"reply": "helpdesk.tasks.on_reply", "window_closed": "helpdesk.tasks.reengage"}'

Each task is called as ``task(message_id, event)`` on ``WADISPATCH_EVENT_QUEUE`` (Celery's default
queue, ``celery``), so any worker of the user's own app picks it up. ``event`` is a small JSON
object: the event's ``type``, the message's ``provider``, what happened, and the ``metadata`` the
message was enqueued with (e.g. ``{"ticket": 4711}``). It never holds a credential nor a phone
number: the user's code has the message id (``GET /v1/messages/{id}`` or
``wadispatch status``) for anything more.
"""

from __future__ import annotations

from typing import Any, Literal

from wadispatch.ledger import MessageRecord
from wadispatch.publishing import publish_job
from wadispatch.settings import Settings

EventType = Literal["reply", "status", "window_closed", "opted_out", "expired"]


def reply_event(record: MessageRecord) -> dict[str, Any]:
    return {
        **_common("reply", record),
        "reply_id": record.reply_id,
        "reply_title": record.reply_title,
        "replied_at": record.replied_at.isoformat() if record.replied_at else None,
    }


def status_event(record: MessageRecord) -> dict[str, Any]:
    return {
        **_common("status", record),
        "state": record.state.value,
        "reason": record.reason,
        "provider_error_code": record.provider_error_code,
        "provider_error_message": record.provider_error_message,
    }


def window_closed_event(record: MessageRecord) -> dict[str, Any]:
    return {**_common("window_closed", record), "sender": record.sender}


def opted_out_event(
    *,
    provider: str,
    sender: str | None,
    keyword: str,
    scope: str,
    message: MessageRecord | None,
    stopped: list[str],
) -> dict[str, Any]:
    """A recipient wrote an opt-out keyword. ``message``: the message they replied to, else the
    first campaign message the keyword stopped (``None`` when neither: then ``message_id`` is
    null; ``wadispatch suppress list`` shows the number, source ``keyword``)."""
    return {
        "type": "opted_out",
        "message_id": message.id if message else None,
        "provider": provider,
        "sender": sender,
        "keyword": keyword,
        "scope": scope,
        "stopped_messages": len(stopped),
        "metadata": (message.request.get("metadata") if message else None) or {},
    }


def emit_opted_out(event: dict[str, Any], settings: Settings) -> bool:
    """Publish the user's ``opted_out`` task, if one is configured (as :func:`emit`)."""
    task = settings.event_tasks.get("opted_out")
    if not task:
        return False
    return publish_job(
        task, [event["message_id"], event], queue=settings.event_queue, about="an opted_out event"
    )


def expired_event(record: MessageRecord) -> dict[str, Any]:
    return {
        **_common("expired", record),
        "state": "failed",
        "reason": "expired",
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
    }


def _common(event_type: EventType, record: MessageRecord) -> dict[str, Any]:
    return {
        "type": event_type,
        "message_id": record.id,
        "provider": record.provider,
        "metadata": record.request.get("metadata") or {},
    }


def emit(event_type: EventType, record: MessageRecord, event: dict[str, Any], settings: Settings) -> bool:
    """Publish the user's task for this event, if one is configured; ``False`` if none or the
    broker refused (logged: an event is a notification, it never undoes what the ledger holds)."""
    task = settings.event_tasks.get(event_type)
    if not task:
        return False
    return publish_job(
        task, [record.id, event], queue=settings.event_queue, about=f"the {event_type} event of {record.id}"
    )


def emit_window_closed(records: list[MessageRecord], settings: Settings) -> None:
    """One ``window_closed`` event per message that failed ``window_closed``."""
    if "window_closed" not in settings.event_tasks:
        return
    for record in records:
        emit("window_closed", record, window_closed_event(record), settings)


def emit_expired(records: list[MessageRecord], settings: Settings) -> None:
    """One ``expired`` event per message that failed ``expired`` (its validity ended unsent)."""
    if "expired" not in settings.event_tasks:
        return
    for record in records:
        emit("expired", record, expired_event(record), settings)
