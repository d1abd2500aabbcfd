"""The 24-hour window counted from when the person wrote, in real Redis: an old message opens
nothing, a late redelivery never extends a window, a webhook naming a phone number and a user id
opens both, a number change moves the window. Webhook bodies from ``tests/samples/provider-webhooks``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from wadispatch.inbox import apply_events
from wadispatch.ledger import Ledger
from wadispatch.webhooks import Inbound, parse
from wadispatch.window import Pair, RedisWindows

from tests.support import make_settings

pytestmark = pytest.mark.integration

BODIES = Path(__file__).resolve().parents[1] / "samples" / "provider-webhooks"
DAY_MS = 86_400_000
BSUID = "US.13491208655302741918"
PAIR: Pair = ("meta", "1122334455667", "+972987654321")


@pytest.fixture
def windows(redis_url: str) -> Iterator[RedisWindows]:
    settings = make_settings(redis_url=redis_url, window_prefix=f"wadispatch-test:win:{uuid.uuid4().hex[:8]}")
    store = RedisWindows.from_url(redis_url, settings)
    yield store
    store.redis.delete(*store.redis.keys(f"{settings.window_prefix}:*") or ["-"])
    store.redis.close()


def ttl_ms(windows: RedisWindows, pair: Pair) -> int:
    return windows.redis.pttl(windows.key(pair))


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def written_at(notification: dict, at: datetime) -> bytes:
    """A pywa notification whose message was written at ``at``."""
    notification["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(at.timestamp()))
    return json.dumps(notification).encode()


def test_a_message_older_than_a_day_opens_nothing(windows: RedisWindows) -> None:
    windows.open_at([(PAIR, ago(hours=25))])
    assert windows.state(PAIR) is None
    windows.close([PAIR])
    windows.open_at([(PAIR, ago(hours=25))])  # an old message does not reopen a closed window
    assert windows.state(PAIR) == "closed"


def test_the_window_ends_a_day_after_the_message_not_after_the_webhook(windows: RedisWindows) -> None:
    windows.open_at([(PAIR, ago(hours=23))])
    assert windows.state(PAIR) == "open"
    assert 3_590_000 <= ttl_ms(windows, PAIR) <= 3_600_000


def test_a_late_redelivery_never_extends_and_a_newer_message_does(windows: RedisWindows) -> None:
    hour_ago = ago(hours=1)
    windows.open_at([(PAIR, hour_ago)])
    first = ttl_ms(windows, PAIR)
    assert 23 * 3_600_000 - 5_000 <= first <= 23 * 3_600_000
    windows.open_at([(PAIR, hour_ago - timedelta(hours=5))])  # an older message, late
    windows.open_at([(PAIR, hour_ago)])  # the same message again
    assert ttl_ms(windows, PAIR) <= first
    windows.open_at([(PAIR, None)])  # the person writes again
    assert ttl_ms(windows, PAIR) > DAY_MS - 5_000


def test_a_time_ahead_of_our_clock_counts_as_now(windows: RedisWindows) -> None:
    windows.open_at([(PAIR, datetime.now(UTC) + timedelta(hours=3))])
    assert ttl_ms(windows, PAIR) <= DAY_MS


def test_a_new_message_reopens_a_closed_window(windows: RedisWindows) -> None:
    windows.close([PAIR])
    windows.open_at([(PAIR, ago(minutes=1))])
    assert windows.state(PAIR) == "open"


def test_a_webhook_naming_phone_and_user_id_opens_both_until_the_same_time(
    windows: RedisWindows, ledger: Ledger
) -> None:
    notifications = json.loads((BODIES / "meta_pywa_message.json").read_bytes())
    [event] = parse("meta", written_at(notifications["text"], ago(hours=2)))
    assert isinstance(event, Inbound) and event.phone_and_user_id == (PAIR[2], BSUID)
    apply_events([event], ledger=ledger, windows=windows, settings=make_settings())
    by_user_id: Pair = ("meta", PAIR[1], BSUID)
    assert windows.state(PAIR) == windows.state(by_user_id) == "open"
    assert abs(ttl_ms(windows, PAIR) - ttl_ms(windows, by_user_id)) < 1_000
    assert 22 * 3_600_000 - 5_000 <= ttl_ms(windows, by_user_id) <= 22 * 3_600_000
    # A send by either finds it; closing one leaves the other to the provider's word.
    assert windows.closed_among([PAIR, by_user_id]) == [False, False]


def test_a_user_with_no_phone_number_gets_a_window_under_their_user_id(
    windows: RedisWindows, ledger: Ledger
) -> None:
    raw = (
        (BODIES / "meta_docs_username_only.json")
        .read_bytes()
        .replace(b"1739321024", str(int(time.time())).encode())
    )
    inbound, _reply = parse("meta", raw)
    apply_events([inbound], ledger=ledger, windows=windows, settings=make_settings())
    assert windows.state(("meta", "106540352242922", BSUID)) == "open"
    assert windows.redis.keys(f"{windows.prefix}:*") == [
        windows.key(("meta", "106540352242922", BSUID)).encode()
    ]


def test_a_system_message_opens_nothing_and_a_number_change_moves_the_window(
    windows: RedisWindows, ledger: Ledger
) -> None:
    system = json.loads((BODIES / "meta_pywa_system.json").read_bytes())
    old: Pair = PAIR
    new: Pair = ("meta", PAIR[1], "+972912345678")
    identity = parse("meta", written_at(system["identity_change"], ago(minutes=1)))
    apply_events(identity, ledger=ledger, windows=windows, settings=make_settings())
    assert windows.state(old) is None  # the user wrote nothing: no window

    windows.open_at([(old, ago(hours=3))])
    before = ttl_ms(windows, old)
    change = parse("meta", written_at(system["phone_number_change"], ago(minutes=1)))
    result = apply_events(change, ledger=ledger, windows=windows, settings=make_settings())
    assert dict(result.counts) == {"system": 1}
    assert windows.state(old) is None and windows.state(new) == "open"
    assert before - 2_000 <= ttl_ms(windows, new) <= before

    apply_events(change, ledger=ledger, windows=windows, settings=make_settings())  # delivered again
    assert windows.state(new) == "open" and windows.state(old) is None
