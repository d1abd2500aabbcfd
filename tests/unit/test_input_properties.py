"""Property-based tests of the other inputs users and providers control: campaign files and webhooks.

- Campaign rows (CSV rows and JSONL lines of any content) go through the real reader, template
  filling, phone normalisation and the ingest loop: each row becomes a message whose request is
  valid, or a row error with its row number and a reason; nothing else is ever raised.
- Webhook bodies (arbitrary bytes, arbitrary JSON, and each provider's samples with any part
  replaced by arbitrary JSON) go through each provider's parser: typed events or
  :class:`MalformedWebhook`, never another exception.

Pure: the ledger's batch writer is replaced by a recorder.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wadispatch.campaigns import ingest as ingest_module
from wadispatch.campaigns.ingest import Target, ingest
from wadispatch.campaigns.phones import PhoneError, PhoneNormaliser
from wadispatch.campaigns.reader import FileFormat, read_rows
from wadispatch.campaigns.store import Skipped
from wadispatch.campaigns.template import Template
from wadispatch.errors import MessageValidationError
from wadispatch.messages import validate_send_request
from wadispatch.recipients import is_bsuid
from wadispatch.webhooks import PARSERS, Inbound, MalformedWebhook, Reply, Status, Unknown, parse

from tests.support import CAMPAIGN_TEMPLATE, button_request
from tests.unit.test_properties import json_values

COMMON = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "webhooks"
SENDER = "1107264639145282"
COLUMNS = ["phone", "name", "order"]
#: "Yes {name}" is a button title: at most 20 characters once filled.
TITLE_ROOM = 20 - len("Yes ")

phones = st.one_of(
    st.from_regex(r"\A\+2557[0-9]{8}\Z"),  # valid Tanzanian mobiles
    st.from_regex(r"\A[+0-9 ()\-.]{0,20}\Z"),
    st.text(max_size=20),
)
names = st.one_of(st.text(max_size=TITLE_ROOM + 6), st.sampled_from(["", " ", "Ann", "x" * TITLE_ROOM]))
cells = st.text(max_size=30)
csv_rows = st.lists(
    st.one_of(
        st.tuples(phones, names, cells).map(list),
        st.lists(cells, max_size=5),  # too few or too many values
    ),
    max_size=25,
)
raw_lines = st.lists(st.text(max_size=40), max_size=5)  # whatever else a file holds, verbatim
jsonl_lines = st.lists(
    st.one_of(
        st.fixed_dictionaries({"phone": phones, "name": names, "order": cells | st.integers()}).map(
            json.dumps
        ),
        st.dictionaries(st.sampled_from(COLUMNS), json_values, max_size=3).map(json.dumps),
        json_values.map(json.dumps),
        # One line of text (the file is read with universal newlines: \r ends a line too).
        st.text(max_size=40).map(lambda text: text.replace("\n", " ").replace("\r", " ")),
    ),
    max_size=25,
)


def csv_text(rows: list[list[str]], extra: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue() + "".join(line + "\n" for line in extra)


def run_ingest(text: str, file_format: FileFormat) -> tuple[list[dict[str, Any]], list[Skipped], int]:
    """The file through the reader and the ingest loop; the messages and skipped rows it would record."""
    template = Template.parse(CAMPAIGN_TEMPLATE, provider="meta", sender=SENDER)
    target = Target("campaign-1", "meta", SENDER, template, "phone", PhoneNormaliser(None))
    recorded: list[dict[str, Any]] = []
    skipped: list[Skipped] = []

    def add_batch(
        _ledger: Any,
        _id: str,
        _sender: Any,
        rows: list[Any],
        skips: list[Skipped],
        _read: int,
        _campaign: Any,
        _assign: Any = None,
    ):
        recorded.extend(rows)
        skipped.extend(skips)
        return len(rows), 0, 0

    rows = read_rows(io.StringIO(text, newline=""), file_format, template.columns | {"phone"})
    with mock.patch.object(ingest_module.store, "add_batch", add_batch):
        counts = ingest(mock.sentinel.ledger, target, rows, batch_size=7)
    return recorded, skipped, counts.rows_read


def check_rows(recorded: list[dict[str, Any]], skipped: list[Skipped], rows_read: int) -> None:
    numbers = sorted([row["campaign_row"] for row in recorded] + [item.row_number for item in skipped])
    assert numbers == sorted(set(numbers)) and len(numbers) == rows_read  # each row once
    assert all(number >= 1 for number in numbers)
    for item in skipped:
        assert item.kind == "invalid" and isinstance(item.reason, str) and item.reason.strip()
    for row in recorded:
        # What a campaign accepts is a valid send request: every filled text within its limit.
        request = validate_send_request(json.loads(row["request"]))
        assert request.to == row["recipient"]


@COMMON
@given(rows=csv_rows, extra=raw_lines)
def test_csv_rows_become_messages_or_numbered_row_errors(rows: list[list[str]], extra: list[str]) -> None:
    recorded, skipped, rows_read = run_ingest(csv_text(rows, extra), "csv")
    check_rows(recorded, skipped, rows_read)


@COMMON
@given(lines=jsonl_lines)
def test_jsonl_lines_become_messages_or_numbered_row_errors(lines: list[str]) -> None:
    recorded, skipped, rows_read = run_ingest("".join(line + "\n" for line in lines), "jsonl")
    check_rows(recorded, skipped, rows_read)
    blank = sum(1 for line in lines if not line.strip())
    assert rows_read == len(lines) - blank


@COMMON
@given(name=st.text(min_size=TITLE_ROOM + 1, max_size=60).filter(lambda name: name.strip()))
def test_a_filled_text_over_its_limit_is_that_rows_error(name: str) -> None:
    rows = [["+255712345678", name, "1"], ["+255712345679", "Ann", "2"]]
    recorded, skipped, _ = run_ingest(csv_text(rows, []), "csv")
    assert [row["campaign_row"] for row in recorded] == [2]
    [error] = skipped
    assert error.row_number == 1
    assert "at most 20 characters once filled" in error.reason


# --- webhook bodies ------------------------------------------------------------------------------


def check_events(provider: str, raw: bytes) -> None:
    try:
        events = parse(provider, raw)
    except MalformedWebhook as exc:
        assert str(exc)
        return
    assert isinstance(events, list)
    assert all(isinstance(event, Inbound | Reply | Status | Unknown) for event in events)


def samples() -> list[tuple[str, Any]]:
    return [
        (path.parent.name, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(SAMPLES.glob("*/*.json"))
    ]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a part of a JSON value (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


@COMMON
@given(provider=st.sampled_from(sorted(PARSERS)), raw=st.binary(max_size=300))
def test_any_bytes_are_events_or_a_parse_error(provider: str, raw: bytes) -> None:
    check_events(provider, raw)


@COMMON
@given(provider=st.sampled_from(sorted(PARSERS)), body=json_values)
def test_any_json_is_events_or_a_parse_error(provider: str, body: Any) -> None:
    check_events(provider, json.dumps(body).encode())


@COMMON
@given(data=st.data())
def test_a_sample_with_any_part_replaced_is_events_or_a_parse_error(data: st.DataObject) -> None:
    provider, sample = data.draw(st.sampled_from(samples()))
    path = data.draw(st.sampled_from(paths(sample)))
    body = replaced(sample, path, data.draw(json_values))
    check_events(provider, json.dumps(body).encode())


# --- Phone numbers never come from letters -------------------------------------------------------

LETTERS = st.characters(categories=("Lu", "Ll", "Lt", "Lm", "Lo"))
phones_with_letters = st.one_of(
    st.tuples(
        st.text(alphabet="0123456789+ -().", max_size=16),
        LETTERS,
        st.text(alphabet="0123456789 -", max_size=16),
    ).map("".join),
    st.text(max_size=40).filter(lambda value: any(char.isalpha() for char in value)),
    st.sampled_from(["332usqJYDAg", "1-800-FLOWERS", "+1 800 FLOWERS", "+255 712 ABC 678", "0712345abc"]),
)


def with_a_letter_and_no_bsuid(value: str) -> bool:
    return any(char.isalpha() for char in value) and not is_bsuid(value.strip())


@COMMON
@given(raw=phones_with_letters.filter(with_a_letter_and_no_bsuid), region=st.sampled_from([None, "TZ", "US"]))
def test_a_phone_with_a_letter_is_never_a_number(raw: str, region: str | None) -> None:
    with pytest.raises(PhoneError):
        PhoneNormaliser(region)(raw)
    with pytest.raises(MessageValidationError):  # the API's, enqueue's and the CLI's `to`
        validate_send_request(button_request("meta", to=raw))


@COMMON
@given(raw=phones_with_letters.filter(with_a_letter_and_no_bsuid))
def test_a_campaign_phone_column_with_a_letter_is_that_rows_error(raw: str) -> None:
    out = io.StringIO()
    csv.writer(out).writerows([["phone", "name", "order"], [raw, "Ann", "7"], ["+255712345678", "Bo", "8"]])
    jsonl = "\n".join(
        json.dumps({"phone": value, "name": "Ann", "order": 7}) for value in (raw, "+255712345678")
    )
    for text, file_format in ((out.getvalue(), "csv"), (jsonl, "jsonl")):
        recorded, skipped, _ = run_ingest(text, file_format)  # type: ignore[arg-type]
        assert [row["recipient"] for row in recorded] == ["+255712345678"]
        assert [item.kind for item in skipped] == ["invalid"]


def test_business_scoped_user_ids_stay_recipients() -> None:
    for bsuid in ("US.13491208655302741918", "US.ENT.11815799212886844830", "BR.abcDEF123"):
        assert PhoneNormaliser("TZ")(f" {bsuid} ") == bsuid
