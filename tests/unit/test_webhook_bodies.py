"""Webhook bodies as the providers send them in 2026 (``tests/samples/provider-webhooks/``, sources
in its README): system messages never open a window, failed statuses keep Meta's ``details``,
inbound events carry when the person wrote, business-scoped user ids (BSUIDs) beside or instead
of phone numbers. Parsers and :func:`apply_events` with a window store in memory: no I/O."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from wadispatch.inbox import apply_events
from wadispatch.webhooks import Inbound, MessageRef, Reply, Status, SystemMessage, Unknown, parse
from wadispatch.window import Opening, Pair

from tests.support import make_settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
BODIES = SAMPLES / "provider-webhooks"
BSUID = "US.13491208655302741918"
PARENT_BSUID = "US.ENT.11815799212886844830"


def body(name: str) -> bytes:
    return (BODIES / f"{name}.json").read_bytes()


def named(name: str) -> dict[str, Any]:
    """pywa's fixture files: an object of named notifications."""
    return json.loads(body(name))


def raw(data: Any) -> bytes:
    return json.dumps(data).encode()


def when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class RecordingWindows:
    """A window store that only records what it is asked (the inbox's side of the contract)."""

    def __init__(self) -> None:
        self.openings: list[Opening] = []
        self.moves: list[tuple[Pair, Pair]] = []
        self.closed: list[Pair] = []

    def closed_among(self, pairs: list[Pair]) -> list[bool]:
        return [False] * len(pairs)

    def open(self, pairs: Iterable[Pair], at: datetime | None = None) -> None:
        self.open_at((pair, at) for pair in pairs)

    def open_at(self, openings: Iterable[Opening], *, now: float | None = None) -> None:
        self.openings += list(openings)

    def move(self, moves: Iterable[tuple[Pair, Pair]]) -> None:
        self.moves += list(moves)

    def close(self, pairs: Iterable[Pair]) -> None:
        self.closed += list(pairs)


class NewContacts:
    """A ledger that knows no user's other name yet and has seen no event (inbound events only
    ask it that, and record their keys)."""

    def __init__(self) -> None:
        self.learned: list[tuple[str, str, str]] = []
        self.seen: set[tuple[str, str]] = set()

    def record_webhook_event(self, provider: str, event_key: str) -> bool:
        new = (provider, event_key) not in self.seen
        self.seen.add((provider, event_key))
        return new

    def remember_contacts(self, provider: str, pairs: Iterable[tuple[str, str]]) -> None:
        self.learned += [(provider, phone, user_id) for phone, user_id in pairs]

    def contact_names(self, provider: str, names: Iterable[str]) -> dict[str, str]:
        return {}


def apply(events: list[Any]) -> tuple[RecordingWindows, dict[str, int]]:
    """Inbound and system events reach the ledger only for their keys and the user's other name."""
    windows = RecordingWindows()
    ledger = NewContacts()
    result = apply_events(events, ledger=ledger, windows=windows, settings=make_settings())  # type: ignore[arg-type]
    return windows, dict(result.counts)


# --- system messages --------------------------------------------------------------------------------


def test_a_number_change_is_a_system_message_naming_both_numbers() -> None:
    [event] = parse("meta", body("meta_docs_user_changed_number"))
    assert isinstance(event, SystemMessage) and not isinstance(event, Inbound)
    assert (event.kind, event.sender) == ("user_changed_number", "106540352242922")
    assert (event.phone, event.new_phone) == ("+16505551234", "+12195555358")
    assert event.at == when(1739321024)
    assert event.moves == (("+16505551234", "+12195555358"),)

    [pywa] = parse("meta", raw(named("meta_pywa_system")["phone_number_change"]))
    assert isinstance(pywa, SystemMessage)
    assert pywa.moves == (("+972987654321", "+972912345678"),)


def test_an_identity_change_is_a_system_message_that_moves_nothing() -> None:
    [event] = parse("meta", raw(named("meta_pywa_system")["identity_change"]))
    assert isinstance(event, SystemMessage)
    assert (event.kind, event.phone, event.moves) == ("customer_identity_changed", "+972987654321", ())


def test_a_user_id_change_moves_the_user_id() -> None:
    data = json.loads(body("meta_docs_user_changed_number"))
    message = data["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("from")
    message["from_user_id"] = BSUID
    message["system"] = {"body": "User changed their user id", "type": "user_changed_user_id"}
    message["system"]["user_id"] = "US.29871208655302741000"
    [event] = parse("meta", raw(data))
    assert isinstance(event, SystemMessage) and event.kind == "user_changed_user_id"
    assert event.moves == ((BSUID, "US.29871208655302741000"),)


def test_system_messages_open_no_window_and_a_number_change_moves_it() -> None:
    number = parse("meta", body("meta_docs_user_changed_number"))
    identity = parse("meta", raw(named("meta_pywa_system")["identity_change"]))
    windows, counts = apply(number + identity)
    assert windows.openings == [] and windows.closed == []
    sender = "106540352242922"
    assert windows.moves == [(("meta", sender, "+16505551234"), ("meta", sender, "+12195555358"))]
    assert counts == {"system": 2}


# --- failed statuses: Meta's details ----------------------------------------------------------------


def test_a_failed_status_carries_metas_details_not_the_title() -> None:
    [event] = parse("meta", raw(named("meta_pywa_message_status")["failed"]))
    assert isinstance(event, Status) and event.status == "failed"
    assert event.error_code == "130472"
    assert event.error_message == (
        "Failed to send message because this user's phone number is part of an experiment"
    )
    [sample] = parse("meta", (SAMPLES / "webhooks" / "meta" / "status_failed.json").read_bytes())
    assert isinstance(sample, Status)
    assert sample.error_message == "Message could not be delivered to the recipient."


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"code": 1, "title": "T", "message": "M", "error_data": {"details": "D"}}, "D"),
        ({"code": 1, "title": "T", "message": "M", "error_data": {}}, "M"),
        ({"code": 1, "title": "T", "error_data": "not an object"}, "T"),
        ({"code": 1}, None),
    ],
)
def test_an_errors_message_is_details_then_message_then_title(
    error: dict[str, Any], message: str | None
) -> None:
    data = named("meta_pywa_message_status")["failed"]
    data["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] = [error]
    [event] = parse("meta", raw(data))
    assert isinstance(event, Status) and event.error_message == message


# --- when the person wrote ----------------------------------------------------------------------------


def test_every_meta_inbound_message_carries_its_own_time() -> None:
    for name, notification in named("meta_pywa_message").items():
        message = notification["entry"][0]["changes"][0]["value"]["messages"][0]
        [event] = parse("meta", raw(notification))
        assert isinstance(event, Inbound), name
        assert event.at == when(int(message["timestamp"])), name


@pytest.mark.parametrize(
    ("provider", "at"),
    [
        ("meta", datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)),  # "timestamp": "1767225630"
        ("bird", datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)),  # "createdDatetime"
        ("briq", datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)),  # "created_at"
        ("zixflow", datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)),  # "timestamp", ISO 8601
        ("wacr", datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)),  # "timestamp", ISO 8601
    ],
)
def test_each_providers_replies_carry_when_they_were_written(provider: str, at: datetime) -> None:
    [event] = parse(provider, (SAMPLES / "webhooks" / provider / "reply_button.json").read_bytes())
    assert isinstance(event, Reply) and event.at == at
    assert event.at.tzinfo is not None


def test_birds_documented_reply_time_with_nanoseconds() -> None:
    [event] = parse("bird", (SAMPLES / "provider-docs-webhooks" / "bird_reply_button.json").read_bytes())
    assert isinstance(event, Reply) and event.at == datetime(2021, 9, 15, 8, 53, 43, tzinfo=UTC)


def test_a_message_without_a_time_has_none_and_the_inbox_passes_times_on() -> None:
    data = named("meta_pywa_message")["text"]
    data["entry"][0]["changes"][0]["value"]["messages"][0].pop("timestamp")
    data["entry"][0]["changes"][0]["value"]["messages"][0]["id"] += "-untimed"  # not a redelivery
    [untimed] = parse("meta", raw(data))
    [timed] = parse("meta", raw(named("meta_pywa_message")["text"]))
    assert isinstance(untimed, Inbound) and untimed.at is None
    windows, _ = apply([untimed, timed])
    assert [at for _, at in windows.openings] == [None, None, when(1697043223), when(1697043223)]


# --- business-scoped user ids ---------------------------------------------------------------------


def test_a_user_with_no_phone_number_is_named_by_their_user_id() -> None:
    inbound, reply = parse("meta", body("meta_docs_username_only"))
    assert type(inbound) is Inbound and isinstance(reply, Reply)
    for event in (inbound, reply):
        assert (event.sender, event.phone, event.user_id) == ("106540352242922", None, BSUID)
        assert event.recipients == (BSUID,) and event.phone_and_user_id is None
    assert reply.answers == MessageRef(
        provider_message_ids=("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",)
    )
    assert (reply.reply_id, reply.reply_title) == ("track-order", "Track order")
    windows, counts = apply([inbound])
    assert windows.openings == [(("meta", "106540352242922", BSUID), when(1739321024))]
    assert counts == {"inbound": 1}


def test_a_user_id_only_in_contacts_names_the_writer() -> None:
    data = json.loads(body("meta_docs_username_only"))
    for message in data["entry"][0]["changes"][0]["value"]["messages"]:
        message.pop("from_user_id")
    events = parse("meta", raw(data))
    assert [(event.phone, event.user_id) for event in events] == [(None, BSUID)] * 2  # type: ignore[union-attr]


def test_replies_naming_phone_and_user_id_give_the_pair() -> None:
    for name, notification in named("meta_pywa_callback_button").items():
        [event] = parse("meta", raw(notification))
        assert isinstance(event, Reply), name
        assert (event.phone, event.user_id) == ("+972987654321", BSUID), name
        assert event.phone_and_user_id == ("+972987654321", BSUID)
        assert event.user_id != PARENT_BSUID


def test_every_inbound_type_with_a_user_id_is_understood() -> None:
    for name, notification in named("meta_pywa_message").items():
        [event] = parse("meta", raw(notification))
        assert isinstance(event, Inbound) and not isinstance(event, Unknown), name
        assert (event.phone, event.user_id) == ("+972987654321", BSUID), name


def test_a_webhook_naming_phone_and_user_id_opens_both_windows_at_the_same_time() -> None:
    [event] = parse("meta", raw(named("meta_pywa_message")["text"]))
    assert isinstance(event, Inbound) and event.phone_and_user_id == ("+972987654321", BSUID)
    windows, _ = apply([event])
    sender = "1122334455667"
    assert windows.openings == [
        (("meta", sender, "+972987654321"), when(1697043223)),
        (("meta", sender, BSUID), when(1697043223)),
    ]


@pytest.mark.parametrize("name", ["sent", "delivered", "read", "failed", "with_tracker"])
def test_statuses_name_the_recipients_user_id(name: str) -> None:
    [event] = parse("meta", raw(named("meta_pywa_message_status")[name]))
    assert isinstance(event, Status) and event.message == MessageRef(provider_message_ids=("wamid.xyzxyz",))
    assert (event.phone, event.user_id) == ("+972987654321", BSUID)


def test_a_status_of_a_message_sent_to_a_user_id() -> None:
    [delivered] = parse("meta", body("meta_docs_status_to_user_id"))
    [failed] = parse("meta", body("meta_docs_failed_to_user_id"))
    assert isinstance(delivered, Status) and isinstance(failed, Status)
    assert (delivered.status, delivered.phone, delivered.user_id) == ("delivered", None, BSUID)
    assert (failed.status, failed.phone, failed.user_id, failed.error_code) == (
        "failed",
        None,
        BSUID,
        "131047",
    )
    assert failed.error_message is not None and failed.error_message.startswith("Message failed to send")


def test_a_user_id_in_a_phone_field_is_never_read_as_a_number() -> None:
    data = named("meta_pywa_message")["text"]
    value = data["entry"][0]["changes"][0]["value"]
    value["messages"][0]["from"] = BSUID
    value.pop("contacts")
    [event] = parse("meta", raw(data))
    assert isinstance(event, Inbound) and (event.phone, event.user_id) == (None, BSUID)


def test_a_group_status_is_not_taken_for_a_user() -> None:
    [event] = parse("meta", raw(named("meta_pywa_message_status")["group"]))
    assert isinstance(event, Status) and (event.phone, event.user_id) == (None, None)


# --- other providers without phone numbers ----------------------------------------------------------

#: Where each provider's reply sample names the writer.
PHONE_FIELD = {
    "bird": ("from",),
    "briq": ("data", "from"),
    "meta": ("entry", 0, "changes", 0, "value", "messages", 0, "from"),
    "wacr": ("phone",),
    "zixflow": ("recipient",),
}


def _without_writer(provider: str, replacement: str | None) -> bytes:
    data = json.loads((SAMPLES / "webhooks" / provider / "reply_button.json").read_bytes())
    *path, last = PHONE_FIELD[provider]
    holder = data
    for step in path:
        holder = holder[step]
    if replacement is None:
        holder.pop(last)
        if provider == "meta":
            data["entry"][0]["changes"][0]["value"].pop("contacts")
    else:
        holder[last] = replacement
    return raw(data)


@pytest.mark.parametrize("provider", list(PHONE_FIELD))
def test_a_reply_without_a_phone_number_is_still_a_reply_with_no_recipient(provider: str) -> None:
    [event] = parse(provider, _without_writer(provider, None))
    assert isinstance(event, Reply) and event.reply_id == "no"
    assert (event.phone, event.user_id, event.recipients) == (None, None, ())


@pytest.mark.parametrize("provider", list(PHONE_FIELD))
def test_a_user_id_where_the_phone_was_names_the_user_not_a_number(provider: str) -> None:
    [event] = parse(provider, _without_writer(provider, BSUID))
    assert isinstance(event, Reply) and (event.phone, event.user_id) == (None, BSUID)


def test_birds_username_only_reply_is_named_by_the_bsuid() -> None:
    [event] = parse("bird", body("bird_username_only_reply"))
    assert isinstance(event, Reply)
    assert (event.phone, event.user_id) == (None, BSUID)
    assert event.answers == MessageRef(provider_message_ids=("4a968dd619f54d9582440d15aaa791ec",))
    assert (event.sender, event.reply_id, event.reply_title) == (
        "0181d0bb76c54g9aae4309s822d35ba5",
        "yes-unique-id",
        "Yes",
    )


def test_an_inbound_message_naming_no_one_opens_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    event = Inbound("bird", "m1", "channel-1", None, at=datetime.now(UTC))
    with caplog.at_level(logging.INFO, logger="wadispatch.webhooks"):
        windows, counts = apply([event])
    assert windows.openings == [] and counts == {"inbound": 1}
    assert "names no phone number or user id: no window opened" in caplog.text
