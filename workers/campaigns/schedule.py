"""When a message may go out: start times, send windows in the recipient's time zone, validity.

Pure: no I/O, every function takes the time it reasons about. A send window ``09:00-20:00`` is
wall-clock time in the recipient's zone (from the phone number with libphonenumber's time-zone
data, or one zone forced for the whole campaign); a window whose end is before its start crosses
midnight (``22:00-06:00``). Times are aware datetimes; the results are in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones
from wadispatch.errors import FieldError
from wadispatch.validity import (
    MAX_CAMPAIGN_VALIDITY_SECONDS,
    ScheduleError,
    message_expiry,
    parse_instant,
)

_CLOCK = r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?"
_WINDOW = re.compile(f"^{_CLOCK}-{_CLOCK}$")
_UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True)
class SendWindow:
    """Daily opening hours in local time; ``closes`` before ``opens`` crosses midnight."""

    opens: time
    closes: time

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        """``"09:00-20:00"`` (seconds allowed: ``"09:00:30-20:00"``) → a window;
        :class:`ScheduleError` on any other form."""
        match = _WINDOW.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ScheduleError("must be HH:MM-HH:MM in 24-hour time, e.g. 09:00-20:00")
        parts = [int(part or 0) for part in match.groups()]
        window = cls(time(*parts[:3]), time(*parts[3:]))
        if window.opens == window.closes:
            raise ScheduleError("opens and closes at the same time: give a window of at least a minute")
        return window

    def __str__(self) -> str:
        return f"{_clock(self.opens)}-{_clock(self.closes)}"

    @property
    def crosses_midnight(self) -> bool:
        return self.closes < self.opens

    def is_open(self, local: time) -> bool:
        """Whether the window is open at this wall-clock time (its end excluded)."""
        if self.crosses_midnight:
            return local >= self.opens or local < self.closes
        return self.opens <= local < self.closes

    def next_opening(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        """``None`` when the window is open at ``at`` in ``zone``; else the instant (UTC) it next opens.

        On a day whose opening time does not exist (a DST gap), it is read with the offset before
        the jump: an opening at 02:30 on a day the clock jumps from 02:00 to 03:00 is 03:30.
        """
        local = at.astimezone(zone)
        if self.is_open(local.time().replace(tzinfo=None)):
            return None
        for days in range(3):
            day = local.date() + timedelta(days=days)
            opening = datetime.combine(day, self.opens, tzinfo=zone).astimezone(UTC)
            if opening > at:
                return opening
        raise AssertionError("a daily window opens within two days")  # pragma: no cover


def _clock(value: time) -> str:
    return f"{value:%H:%M:%S}" if value.second else f"{value:%H:%M}"


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Paris``); :class:`ScheduleError` when there is none."""
    try:
        if not isinstance(name, str) or not name.strip() or name.strip() != name:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}: give an IANA name such as Europe/Paris") from None


@lru_cache(maxsize=4096)
def zone_of_number(recipient: str, default: str = "UTC") -> str:
    """The time zone of an E.164 number by libphonenumber: the first of several, ``default`` when
    the number's zone is unknown (or ``recipient`` is not a phone number, e.g. a BSUID)."""
    try:
        number = phonenumbers.parse(recipient, None)
    except phonenumbers.NumberParseException:
        return default
    zones = phone_timezones.time_zones_for_number(number)
    if not zones or zones[0] == _UNKNOWN_ZONE:
        return default
    return zones[0]


@dataclass(frozen=True)
class Schedule:
    """A campaign's start time, send window and forced time zone (each optional)."""

    start_at: datetime | None = None
    window: SendWindow | None = None
    zone: str | None = None
    """A zone forced for every recipient; ``None``: each recipient's own."""
    default_zone: str = "UTC"
    """The zone of a number libphonenumber cannot place."""

    @property
    def empty(self) -> bool:
        return self.start_at is None and self.window is None

    def zone_for(self, recipient: str | None) -> ZoneInfo:
        """The zone the window is read in for this recipient."""
        name = self.zone or (zone_of_number(recipient, self.default_zone) if recipient else self.default_zone)
        return ZoneInfo(name)

    def hold_until(self, recipient: str | None, now: datetime) -> datetime | None:
        """Until when a message to ``recipient`` must wait (UTC), or ``None`` to send it now."""
        begin = now
        if self.start_at is not None and self.start_at > now:
            begin = self.start_at
        opening = None if self.window is None else self.window.next_opening(begin, self.zone_for(recipient))
        if opening is not None:
            return opening
        return begin if begin > now else None


@dataclass(frozen=True)
class CampaignTiming:
    """A campaign's checked start, send window, zone and validity."""

    schedule: Schedule
    expires_at: datetime | None
    """Every message's expiry: ``expires_at`` as given, or ``valid_for_seconds`` from the start."""


def campaign_timing(
    *,
    start_at: str | datetime | None,
    send_window: str | None,
    time_zone_name: str | None,
    valid_for_seconds: int | None,
    expires_at: str | datetime | None,
    now: datetime,
    default_zone: str,
) -> tuple[CampaignTiming | None, list[FieldError]]:
    """Check a campaign's timing options; the timing, or every rule broken (by field name)."""
    errors: list[FieldError] = []
    start: datetime | None = None
    if start_at is not None:
        try:
            start = parse_instant(start_at)
        except ScheduleError as exc:
            errors.append(FieldError("start_at", str(exc)))
    window = None
    if send_window is not None:
        try:
            window = SendWindow.parse(send_window)
        except ScheduleError as exc:
            errors.append(FieldError("send_window", str(exc)))
    if time_zone_name is not None:
        try:
            time_zone(time_zone_name)
        except ScheduleError as exc:
            errors.append(FieldError("timezone", str(exc)))
        if send_window is None:
            errors.append(FieldError("timezone", "applies to a send window: give send_window too"))
    expiry, validity_errors = message_expiry(
        valid_for_seconds,
        expires_at,
        start=max(start or now, now),
        now=now,
        max_seconds=MAX_CAMPAIGN_VALIDITY_SECONDS,
    )
    errors += validity_errors
    if errors:
        return None, errors
    schedule = Schedule(start if start and start > now else None, window, time_zone_name, default_zone)
    return CampaignTiming(schedule, expiry), []
