"""A message's validity: until when it may still be sent, from ``valid_for_seconds`` or ``expires_at``.

Pure: no I/O; the caller gives the time. A message not sent by its expiry ends ``failed`` with
reason ``expired`` (checked when a worker claims it, and by the reconciler).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wadispatch.errors import FieldError, WadispatchError

#: The longest validity of a message sent on its own: Twilio's maximum (10 hours).
MAX_MESSAGE_VALIDITY_SECONDS = 36_000
#: The longest validity of a campaign's messages, from its start: a campaign held back by send
#: windows may run over several days.
MAX_CAMPAIGN_VALIDITY_SECONDS = 7 * 24 * 3600


class ScheduleError(WadispatchError, ValueError):
    """A start time, send window, time zone or validity that breaks a rule (the message is the rule)."""


def parse_instant(value: str | datetime) -> datetime:
    """An ISO 8601 time with its UTC offset (``2026-05-01T09:00:00+02:00`` or ``...Z``) → UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ScheduleError("must be an ISO 8601 time, e.g. 2026-05-01T09:00:00+02:00") from None
    if not isinstance(value, datetime):
        raise ScheduleError("must be an ISO 8601 time, e.g. 2026-05-01T09:00:00+02:00")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError("must carry its UTC offset (e.g. +02:00 or Z)")
    return value.astimezone(UTC)


def message_expiry(
    valid_for_seconds: int | None,
    expires_at: datetime | None,
    *,
    start: datetime,
    now: datetime,
    max_seconds: int,
) -> tuple[datetime | None, list[FieldError]]:
    """The expiry of ``valid_for_seconds`` counted from ``start``, or ``expires_at``; and the rules
    broken: not both, in the future, at most ``max_seconds`` after ``start`` (or ``now`` if later)."""
    if valid_for_seconds is not None and expires_at is not None:
        rule = "give valid_for_seconds or expires_at, not both"
        return None, [FieldError("expires_at", rule)]
    begin = max(start, now)
    if valid_for_seconds is not None:
        if isinstance(valid_for_seconds, bool) or not isinstance(valid_for_seconds, int):
            return None, [FieldError("valid_for_seconds", "must be a whole number of seconds")]
        if not 1 <= valid_for_seconds <= max_seconds:
            rule = f"must be between 1 and {max_seconds:,} seconds"
            return None, [FieldError("valid_for_seconds", rule)]
        expiry = start + timedelta(seconds=valid_for_seconds)
        if expiry <= now:
            return None, [FieldError("valid_for_seconds", "ends in the past (counted from the start)")]
        return expiry, []
    if expires_at is None:
        return None, []
    try:
        expiry = parse_instant(expires_at)
    except ScheduleError as exc:
        return None, [FieldError("expires_at", str(exc))]
    if expiry <= now:
        return None, [FieldError("expires_at", "must be in the future")]
    if expiry > begin + timedelta(seconds=max_seconds):
        return None, [FieldError("expires_at", f"must be at most {max_seconds:,} seconds after the start")]
    return expiry, []


def single_message_expiry(
    valid_for_seconds: int | None, expires_at: datetime | None, now: datetime
) -> tuple[datetime | None, list[FieldError]]:
    """:func:`message_expiry` of one message (not a campaign's), counted from ``now``."""
    return message_expiry(
        valid_for_seconds, expires_at, start=now, now=now, max_seconds=MAX_MESSAGE_VALIDITY_SECONDS
    )
