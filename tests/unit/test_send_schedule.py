"""The pure window, time-zone and validity maths of campaigns and messages."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from wadispatch.campaigns.holding import LAPSE_KEEP_SECONDS, LAPSE_MARGIN, Hold, lapse_plan
from wadispatch.campaigns.schedule import (
    Schedule,
    SendWindow,
    campaign_timing,
    time_zone,
    zone_of_number,
)
from wadispatch.engine import decide
from wadispatch.ledger import MessageRecord
from wadispatch.providers import Outcome
from wadispatch.states import State
from wadispatch.validity import MAX_MESSAGE_VALIDITY_SECONDS, ScheduleError, message_expiry

from tests.support import button_request, make_settings

PARIS = time_zone("Europe/Paris")
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # 14:00 in Paris (CEST)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("9-20", "HH:MM-HH:MM"),
        ("09:00-24:00", "HH:MM-HH:MM"),
        ("09:00 20:00", "HH:MM-HH:MM"),
        ("09:60-20:00", "HH:MM-HH:MM"),
        ("09:00-09:00", "same time"),
    ],
)
def test_a_bad_window_names_the_rule(text: str, rule: str) -> None:
    with pytest.raises(ScheduleError, match=rule):
        SendWindow.parse(text)


def test_a_window_may_give_seconds() -> None:
    window = SendWindow.parse("09:00:30-20:00")
    assert str(window) == "09:00:30-20:00" and str(SendWindow.parse(" 09:00-20:00 ")) == "09:00-20:00"
    assert window.next_opening(utc(2026, 6, 10, 7, 0, 10), PARIS) == utc(2026, 6, 10, 7, 0, 30)


def test_inside_the_window_sends_now_outside_waits_for_the_next_opening() -> None:
    window = SendWindow.parse("09:00-20:00")
    assert window.next_opening(NOW, PARIS) is None
    evening = utc(2026, 6, 10, 18, 30)  # 20:30 in Paris: closed, opens tomorrow 09:00 CEST
    assert window.next_opening(evening, PARIS) == utc(2026, 6, 11, 7, 0)
    early = utc(2026, 6, 10, 5, 0)  # 07:00 in Paris: opens today
    assert window.next_opening(early, PARIS) == utc(2026, 6, 10, 7, 0)
    closing = utc(2026, 6, 10, 18, 0)  # 20:00 exactly: the end is excluded
    assert window.next_opening(closing, PARIS) == utc(2026, 6, 11, 7, 0)


def test_a_window_crossing_midnight() -> None:
    window = SendWindow.parse("22:00-06:00")
    assert window.crosses_midnight
    assert window.next_opening(utc(2026, 6, 10, 21, 0), PARIS) is None  # 23:00
    assert window.next_opening(utc(2026, 6, 11, 2, 0), PARIS) is None  # 04:00 the next day
    assert window.next_opening(NOW, PARIS) == utc(2026, 6, 10, 20, 0)  # 14:00 → 22:00 CEST
    assert window.next_opening(utc(2026, 6, 11, 4, 0), PARIS) == utc(2026, 6, 11, 20, 0)  # 06:00


def test_daylight_saving_time() -> None:
    window = SendWindow.parse("09:00-20:00")
    # Paris switches to summer time on 2026-03-29: 09:00 is 08:00 UTC before, 07:00 UTC after.
    assert window.next_opening(utc(2026, 3, 28, 20, 0), PARIS) == utc(2026, 3, 29, 7, 0)
    assert window.next_opening(utc(2026, 3, 27, 20, 0), PARIS) == utc(2026, 3, 28, 8, 0)
    # An opening inside the DST gap (02:30 does not exist that day) opens when the clock jumps.
    gap = SendWindow.parse("02:30-04:00")
    opening = gap.next_opening(utc(2026, 3, 28, 23, 30), PARIS)
    assert opening is not None and utc(2026, 3, 29, 0, 59) < opening <= utc(2026, 3, 29, 1, 30)
    assert gap.next_opening(opening, PARIS) is None


def test_time_zone_of_a_number() -> None:
    assert zone_of_number("+33612345678") == "Europe/Paris"
    assert zone_of_number("+255712345678") == "Africa/Dar_es_Salaam"
    # A number of several zones (the US) takes the first libphonenumber gives.
    assert zone_of_number("+12015550123").startswith("America/")
    # Unknown: a number libphonenumber cannot place, or not a number at all (a BSUID).
    assert zone_of_number("+80012345678", "Asia/Tokyo") == "Asia/Tokyo"
    assert zone_of_number("US.13491208655302741918", "Europe/Berlin") == "Europe/Berlin"


def test_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        time_zone("Mars/Olympus")


def test_hold_until_the_start_and_the_recipients_own_window() -> None:
    window = SendWindow.parse("09:00-20:00")
    by_number = Schedule(window=window)
    # 12:00 UTC is 14:00 in Paris (open) and 21:00 in Tokyo (closed: opens 09:00 JST = 00:00 UTC).
    assert by_number.hold_until("+33612345678", NOW) is None
    assert by_number.hold_until("+81312345678", NOW) == utc(2026, 6, 11, 0, 0)
    forced = Schedule(window=window, zone="Asia/Tokyo")
    assert forced.hold_until("+33612345678", NOW) == utc(2026, 6, 11, 0, 0)
    start = NOW + timedelta(hours=1)
    assert Schedule(start_at=start).hold_until("+33612345678", NOW) == start
    # A start at 19:30 in Paris: open then; a start at 21:00: the next morning.
    assert Schedule(start_at=utc(2026, 6, 10, 17, 30), window=window).hold_until("+33612345678", NOW) == utc(
        2026, 6, 10, 17, 30
    )
    assert Schedule(start_at=utc(2026, 6, 10, 19, 0), window=window).hold_until("+33612345678", NOW) == utc(
        2026, 6, 11, 7, 0
    )


def test_message_expiry_rules() -> None:
    later = NOW + timedelta(hours=1)
    assert message_expiry(600, None, start=NOW, now=NOW, max_seconds=36_000) == (
        NOW + timedelta(seconds=600),
        [],
    )
    assert message_expiry(None, later.isoformat(), start=NOW, now=NOW, max_seconds=36_000) == (later, [])
    assert message_expiry(None, None, start=NOW, now=NOW, max_seconds=36_000) == (None, [])

    def rule(valid: object, expires: object) -> tuple[str, str]:
        _, errors = message_expiry(
            valid, expires, start=NOW, now=NOW, max_seconds=MAX_MESSAGE_VALIDITY_SECONDS
        )  # type: ignore[arg-type]
        assert len(errors) == 1
        return errors[0].path, errors[0].rule

    assert rule(600, later) == ("expires_at", "give valid_for_seconds or expires_at, not both")
    assert rule(0, None)[0] == "valid_for_seconds"
    assert rule(36_001, None) == ("valid_for_seconds", "must be between 1 and 36,000 seconds")
    assert rule(None, (NOW - timedelta(seconds=1)).isoformat()) == ("expires_at", "must be in the future")
    assert rule(None, "2026-06-10T15:00:00")[1] == "must carry its UTC offset (e.g. +02:00 or Z)"
    assert rule(None, "tomorrow")[1].startswith("must be an ISO 8601 time")
    assert rule(None, (NOW + timedelta(hours=11)).isoformat())[1].startswith("must be at most 36,000")


def test_campaign_timing_collects_every_broken_rule_by_field() -> None:
    timing, errors = campaign_timing(
        start_at="soon",
        send_window="9am-5pm",
        time_zone_name="Nowhere/Land",
        valid_for_seconds=None,
        expires_at=(NOW - timedelta(minutes=1)).isoformat(),
        now=NOW,
        default_zone="UTC",
    )
    assert timing is None
    assert [error.path for error in errors] == ["start_at", "send_window", "timezone", "expires_at"]
    timing, errors = campaign_timing(
        start_at=(NOW + timedelta(hours=2)).isoformat(),
        send_window="09:00-20:00",
        time_zone_name="Europe/Paris",
        valid_for_seconds=3600,
        expires_at=None,
        now=NOW,
        default_zone="UTC",
    )
    assert errors == [] and timing is not None
    # Valid for an hour from the start, not from now.
    assert timing.expires_at == NOW + timedelta(hours=3)
    assert timing.schedule.zone == "Europe/Paris" and str(timing.schedule.window) == "09:00-20:00"


def test_the_eta_starts_the_held_messages_share_at_their_opening() -> None:
    from wadispatch.campaigns.api import _eta_with_holds

    in_an_hour = NOW + timedelta(hours=1)
    # 100 left at 10/s (10 s), all held for an hour: an hour and 10 s.
    assert _eta_with_holds(10.0, 100, 100, in_an_hour, NOW) == 3610.0
    # Half held: the other half goes now; the held half's 5 s start at the opening.
    assert _eta_with_holds(10.0, 100, 50, in_an_hour, NOW) == 3605.0
    # Nothing held, or no estimate (paused, no worker): unchanged.
    assert _eta_with_holds(10.0, 100, 0, None, NOW) == 10.0
    assert _eta_with_holds(None, 100, 100, in_an_hour, NOW) is None


# --- retries of a message held for hours, and windows lapsing before a send window --------------

HELD_NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def held_record(**overrides: object) -> MessageRecord:
    values: dict[str, Any] = {
        "id": "m-1",
        "provider": "meta",
        "sender": "1107264639145282",
        "recipient": "+255712345678",
        "conversation_id": None,
        "request": button_request(),
        "idempotency_key": None,
        "state": State.SENDING,
        "reason": None,
        "attempts": 1,
        "next_attempt_at": None,
        "provider_message_id": None,
        "provider_error_code": None,
        "provider_error_message": None,
        "created_at": HELD_NOW - timedelta(hours=10),  # read the evening before its window
        "updated_at": HELD_NOW,
        "campaign_id": "c-1",
    }
    return MessageRecord(**{**values, **overrides})


def test_a_validity_replaces_the_age_limit_for_a_message_held_for_hours() -> None:
    settings = make_settings(max_age_seconds=3600, max_attempts=5)
    rng = random.Random(1)
    valid = held_record(expires_at=HELD_NOW + timedelta(days=1))
    change, retry_in = decide(valid, Outcome.transient("server_error"), settings, rng, HELD_NOW)
    assert (change.to_state, retry_in is not None) == (State.PENDING, True)
    without = held_record()  # no validity: the age limit counts from the creation
    change, retry_in = decide(without, Outcome.transient("server_error"), settings, rng, HELD_NOW)
    assert (change.to_state, change.reason, retry_in) == (State.FAILED, "expired", None)
    ending = held_record(expires_at=HELD_NOW + timedelta(seconds=0.5))
    change, _ = decide(ending, Outcome.rate_limited(5.0), settings, rng, HELD_NOW)
    assert (change.to_state, change.reason) == (State.FAILED, "expired")


def test_a_window_closing_before_the_opening_holds_until_it_closes_unless_a_template_waits() -> None:
    opening = HELD_NOW + timedelta(hours=2)
    pair = ("meta", "1107264639145282", "+255712345678")
    holds = [Hold(pair, opening, False), Hold(pair, opening, True), Hold(pair, opening, False)]
    closes = opening.timestamp() - 3600
    times, lapses = lapse_plan(holds, [closes, closes, None])
    assert times == [datetime.fromtimestamp(closes, UTC) + LAPSE_MARGIN, opening, opening]
    assert lapses == [(pair, closes, opening.timestamp() + LAPSE_KEEP_SECONDS)] * 2
    later = opening.timestamp() + 60  # the window is still open at the opening: nothing to do
    assert lapse_plan(holds[:1], [later]) == ([opening], [])
