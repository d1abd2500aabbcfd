"""The campaigns' pure parts: templates, phone numbers, reading rows, the ETA."""

from __future__ import annotations

import io
import json
import random
import time
import uuid

import phonenumbers
import pytest
from wadispatch.campaigns.api import estimate_eta, suppress
from wadispatch.campaigns.errors import CampaignInputError
from wadispatch.campaigns.ingest import RequestText, Target
from wadispatch.campaigns.phones import PhoneError, PhoneNormaliser
from wadispatch.campaigns.reader import FileError, detect_format, read_rows
from wadispatch.campaigns.template import RowError, Template, parse_text
from wadispatch.errors import MessageValidationError
from wadispatch.ids import message_ids, new_message_id

from tests.support import CAMPAIGN_TEMPLATE

BUTTONS: dict = CAMPAIGN_TEMPLATE
LIST = {
    "type": "list",
    "header": {"type": "text", "text": "Menu for {name}"},
    "body": {"text": "Pick one"},
    "action": {
        "button": "Open",
        "sections": [
            {"title": "{city}", "rows": [{"id": "a", "title": "A"}, {"id": "{code}", "title": "B"}]}
        ],
    },
}


def template(interactive: dict = BUTTONS) -> Template:
    return Template.parse(interactive, provider="meta", sender="1107264639145282")


# --- templates -------------------------------------------------------------------------------------


def test_placeholders_are_parsed_with_escaped_braces() -> None:
    assert parse_text("Hi {name}, {{literal}} {n2}!") == ["Hi ", ("name",), ", {literal} ", ("n2",), "!"]
    assert parse_text("no placeholder") == ["no placeholder"]


@pytest.mark.parametrize("text", ["{bad name}", "{}", "open { brace", "{1st}"])
def test_a_bad_placeholder_names_the_field(text: str) -> None:
    interactive = {**BUTTONS, "body": {"text": text}}
    with pytest.raises(MessageValidationError) as caught:
        template(interactive)
    assert [error.path for error in caught.value.errors] == ["interactive.body.text"]
    assert "placeholder" in caught.value.errors[0].rule


def test_filling_replaces_every_placeholder_and_leaves_the_template_alone() -> None:
    checked = template()
    filled = checked.fill({"name": "Ann", "order": "42"})
    assert filled["body"]["text"] == "Hi Ann, your order 42 is ready"
    assert filled["action"]["buttons"][0]["reply"] == {"id": "yes-42", "title": "Yes Ann"}
    assert filled["action"]["buttons"][1] == BUTTONS["action"]["buttons"][1]
    assert checked.interactive == BUTTONS
    assert BUTTONS["body"]["text"] == "Hi {name}, your order {order} is ready"
    assert checked.columns == {"name", "order"}


def test_a_filled_title_over_20_characters_is_a_row_error() -> None:
    with pytest.raises(
        RowError, match=r"buttons\[0\]\.reply\.title: at most 20 characters once filled \(has 26\)"
    ):
        template().fill({"name": "Bartholomew Fitzgerald", "order": "1"})


def test_a_filled_title_that_equals_another_breaks_uniqueness() -> None:
    with pytest.raises(RowError, match="button titles must be unique"):
        Template.parse(
            {
                **BUTTONS,
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "a", "title": "{answer}"}},
                        {"type": "reply", "reply": {"id": "b", "title": "No"}},
                    ]
                },
            },
            provider="meta",
            sender="1",
        ).fill({"answer": "No", "name": "x", "order": "1"})


def test_a_text_filled_empty_is_a_row_error() -> None:
    with pytest.raises(RowError, match="must not be empty"):
        template(LIST).fill({"name": "x", "city": "  ", "code": "c"})


def test_list_placeholders_fill_sections_and_rows() -> None:
    filled = template(LIST).fill({"name": "Ann", "city": "Arusha", "code": "c-1"})
    assert filled["header"]["text"] == "Menu for Ann"
    assert filled["action"]["sections"][0]["title"] == "Arusha"
    assert [row["id"] for row in filled["action"]["sections"][0]["rows"]] == ["a", "c-1"]


def test_a_filled_row_id_equal_to_a_fixed_one_breaks_uniqueness() -> None:
    with pytest.raises(RowError, match="row ids must be unique"):
        template(LIST).fill({"name": "Ann", "city": "Arusha", "code": "a"})


def test_the_fixed_text_of_a_template_is_checked_once_with_every_rule() -> None:
    interactive = {**BUTTONS, "footer": {"text": "x" * 61 + "{name}"}}
    with pytest.raises(MessageValidationError) as caught:
        template(interactive)
    assert [(e.path, e.rule) for e in caught.value.errors] == [
        ("interactive.footer.text", "at most 60 characters (has 62)")
    ]


def test_placeholders_outside_texts_are_refused() -> None:
    interactive = {**BUTTONS, "header": {"type": "image", "image": {"link": "https://x.example/{name}.png"}}}
    with pytest.raises(
        MessageValidationError, match=r"interactive\.header\.image\.link: placeholders are allowed"
    ):
        template(interactive)


def test_the_provider_is_checked_with_the_template() -> None:
    with pytest.raises(MessageValidationError, match="provider"):
        Template.parse(BUTTONS, provider="nope", sender="1")


# --- phone numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+255712345678",
        "+255 712 345 678",
        "00255712345678",
        "(+255) 712-345-678",
        "255712345678",
        255712345678,
    ],
)
def test_international_numbers_normalise_to_e164(raw: object) -> None:
    assert PhoneNormaliser()(raw) == "+255712345678"


def test_a_default_region_reads_national_numbers() -> None:
    assert PhoneNormaliser("tz")("0712 345 678") == "+255712345678"


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("", "missing"),
        ("0712345678", "no country code"),
        ("+15550000000", "not a valid number"),
        ("+2557123", "not a valid number"),
        ("call me", "not"),
        (None, "must be a string"),
    ],
)
def test_bad_numbers_say_why(raw: object, rule: str) -> None:
    with pytest.raises(PhoneError, match=rule):
        PhoneNormaliser()(raw)


def test_an_unknown_region_is_refused() -> None:
    with pytest.raises(CampaignInputError, match="region: unknown region 'XX'"):
        PhoneNormaliser("XX")


def test_suppress_with_an_unknown_region_is_a_campaign_input_error() -> None:
    with pytest.raises(CampaignInputError, match="region: unknown region"):
        suppress(["+255712345678"], region="XX")


def test_the_fast_path_agrees_with_the_full_parse_on_leading_zero_numbers() -> None:
    # Italy keeps the leading 0 of landlines in E.164: the fast path hands such numbers to the parser.
    assert PhoneNormaliser()("+390612345678") == "+390612345678"


def test_the_fast_path_judges_every_country_code_as_libphonenumber_does() -> None:
    # The fast path checks +<digits> numbers against libphonenumber's metadata itself: for each
    # country code, its example numbers, their one-digit changes and random digits must be judged
    # exactly as the full parse and phonenumbers.is_valid_number judge them.
    rng = random.Random(7)
    normalise = PhoneNormaliser()
    numbers: list[str] = []
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            examples = (
                [phonenumbers.example_number_for_non_geo_entity(code)]
                if region == "001"
                else [phonenumbers.example_number_for_type(region, kind) for kind in range(11)]
            )
            for example in filter(None, examples):
                digits = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                numbers.append(digits)
                for _ in range(5):
                    at = rng.randrange(len(str(code)) + 1, len(digits))
                    numbers.append(digits[:at] + str(rng.randrange(10)) + digits[at + 1 :])
        for _ in range(20):
            numbers.append(f"+{code}" + "".join(rng.choices("0123456789", k=rng.randrange(1, 13))))
    for number in numbers:
        try:
            expected = phonenumbers.format_number(
                phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.E164
            )
            valid = phonenumbers.is_valid_number(phonenumbers.parse(number))
        except phonenumbers.NumberParseException:
            valid = False
        if valid:
            assert normalise(number) == expected, number
        else:
            with pytest.raises(PhoneError):
                normalise(number)


@pytest.mark.parametrize("sender", ["1107264639145282", None])
def test_a_rows_request_text_is_what_json_dumps_writes(sender: str | None) -> None:
    # RequestText writes each row's request from a skeleton: it must be json.dumps's text exactly.
    provider = "meta" if sender else "briq"
    checked = Template.parse(LIST, provider=provider, sender=sender)
    target = Target("campaign-1", provider, sender, checked, "phone", PhoneNormaliser())
    write = RequestText(target)
    rng = random.Random(3)
    alphabet = ['"', "\\", "%", "%s", "{", "}", "\x01", "\u2028", "é", "😀", "a", " ", "\n"]
    for _ in range(300):
        texts = ["".join(rng.choices(alphabet, k=rng.randrange(1, 8))) for _ in checked.slots]
        recipient = rng.choice(["+255712345678", "US.13491208655302741918"])
        expected = json.dumps(target.request(recipient, checked.filled(texts)))
        assert write(recipient, texts) == expected


# --- message ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["bulk", "single"])
def test_message_ids_are_version_7_uuids_in_time_order(source: str) -> None:
    ids = message_ids()
    before = time.time_ns() // 1_000_000
    made = [next(ids) if source == "bulk" else new_message_id() for _ in range(3000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    stamps = []
    for text in made:
        value = uuid.UUID(text)
        assert (str(value), value.version, value.variant) == (text, 7, uuid.RFC_4122)
        stamps.append(value.int >> 80)
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after


# --- reading rows ----------------------------------------------------------------------------------


def rows(text: str, file_format: str = "csv", required: frozenset[str] = frozenset({"phone", "name"})):
    return list(read_rows(io.StringIO(text), file_format, required))  # type: ignore[arg-type]


def test_csv_rows_are_numbered_from_the_first_data_row() -> None:
    result = rows("phone,name\n+255712345678,Ann\n\n+255712345679,Bob\n")
    assert result == [
        (1, {"phone": "+255712345678", "name": "Ann"}),
        (2, {"phone": "+255712345679", "name": "Bob"}),
    ]


def test_a_csv_header_missing_a_column_fails_the_file() -> None:
    with pytest.raises(FileError, match="no column name"):
        rows("phone,city\n+255712345678,Arusha\n")


def test_an_empty_csv_fails_the_file() -> None:
    with pytest.raises(FileError, match="empty"):
        rows("")


def test_bad_csv_rows_are_row_errors_and_the_others_go_on() -> None:
    result = rows(
        "phone,name,city\n+255712345678\n+255712345679,Bob,Moshi,extra\n+255712345670,Cy\n",
        required=frozenset({"phone", "name"}),
    )
    assert isinstance(result[0][1], RowError) and "missing column name" in str(result[0][1])
    assert isinstance(result[1][1], RowError) and "4 values for 3 columns" in str(result[1][1])
    assert result[2] == (3, {"phone": "+255712345670", "name": "Cy"})


def test_jsonl_rows_are_numbered_by_line_with_bad_lines_reported() -> None:
    text = (
        '{"phone": 255712345678, "name": "Ann"}\n\nnot json\n[1]\n{"phone": "+1"}\n'
        '{"phone": "+2", "name": {"a": 1}}\n'
    )
    result = rows(text, "jsonl")
    assert result[0] == (1, {"phone": "255712345678", "name": "Ann"})
    errors = {number: str(value) for number, value in result[1:]}
    assert set(errors) == {3, 4, 5, 6}
    assert "not valid JSON" in errors[3]
    assert "must be a JSON object" in errors[4]
    assert "missing column name" in errors[5]
    assert "must be a string or a number" in errors[6]


def test_the_format_comes_from_the_extension() -> None:
    from pathlib import Path

    assert detect_format(Path("a.CSV")) == "csv"
    assert detect_format(Path("a.ndjson")) == "jsonl"
    with pytest.raises(FileError):
        detect_format(Path("a.xlsx"))


# --- ETA -------------------------------------------------------------------------------------------


def test_the_eta_uses_the_lower_of_the_observed_rate_and_the_limit() -> None:
    assert estimate_eta(1000, 50.0, 76.8, running=True) == pytest.approx(20.0)
    assert estimate_eta(1000, 200.0, 80.0, running=True) == pytest.approx(12.5)
    assert estimate_eta(800, 0.0, 80.0, running=True) == pytest.approx(10.0)
    assert estimate_eta(0, 10.0, 80.0, running=True) == 0.0
    assert estimate_eta(500, 10.0, 80.0, running=False) is None
