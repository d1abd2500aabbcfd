"""Unit tests for the canonical send request: WhatsApp's limits and each provider's capabilities.

Pure: no I/O. Every failing case asserts the exact field path and the rule of the error it expects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from wadispatch.errors import FieldError, MessageValidationError
from wadispatch.messages import (
    IDEMPOTENCY_KEY_MAX,
    METADATA_MAX_BYTES,
    SendRequest,
    validate_send_request,
)
from wadispatch.settings import PROVIDER_NAMES

ACTION = "interactive.action"
HEADER = "interactive.header"
CONVERSATION_ID = "0b9f1c9e-6d7a-4c2e-9a51-3f4e8d2b7c10"
SENDER_REQUIRED = ("bird", "zixflow", "meta")
SENDER_OPTIONAL = ("briq", "wacr")
MEDIA_HEADERS = ("image", "video", "document")
# Characters of 1, 2, 3 and 4 bytes in UTF-8: lengths are counted in characters, not bytes.
CHARACTERS = ("x", "é", "日", "😀")


# --- builders ------------------------------------------------------------------------------------


def buttons(count: int) -> list[dict[str, Any]]:
    return [{"type": "reply", "reply": {"id": f"b{i}", "title": f"Choice {i}"}} for i in range(count)]


def rows(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "title": f"Row {i}"} for i in range(count)]


def sections(*row_counts: int) -> list[dict[str, Any]]:
    """One titled section per count, with row ids unique across sections."""
    return [{"title": f"Section {s}", "rows": rows(n, f"s{s}r")} for s, n in enumerate(row_counts)]


def button_message(**changes: Any) -> dict[str, Any]:
    interactive: dict[str, Any] = {
        "type": "button",
        "body": {"text": "Pick one"},
        "action": {"buttons": buttons(2)},
    }
    interactive.update(changes)
    return interactive


def list_message(**changes: Any) -> dict[str, Any]:
    interactive: dict[str, Any] = {
        "type": "list",
        "body": {"text": "Pick a row"},
        "action": {"button": "Menu", "sections": sections(2)},
    }
    interactive.update(changes)
    return interactive


def request(
    interactive: dict[str, Any] | None = None, provider: str = "meta", **fields: Any
) -> dict[str, Any]:
    """A valid send request for ``provider``; ``fields`` override or add top-level fields."""
    data: dict[str, Any] = {
        "provider": provider,
        "to": "+255712345678",
        "interactive": interactive if interactive is not None else button_message(),
    }
    if provider in SENDER_REQUIRED:
        data["sender"] = "255700000001"
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def errors_of(data: Any) -> list[FieldError]:
    with pytest.raises(MessageValidationError) as info:
        validate_send_request(data)
    return info.value.errors


def only_error(data: Any) -> FieldError:
    errors = errors_of(data)
    assert len(errors) == 1, errors
    return errors[0]


def with_action(interactive: dict[str, Any], **action: Any) -> dict[str, Any]:
    return {**interactive, "action": {**interactive["action"], **action}}


# --- minimal valid messages ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_minimal_button_message_passes_on_every_provider(provider: str) -> None:
    interactive = {
        "type": "button",
        "body": {"text": "Yes?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]},
    }
    sent = validate_send_request(request(interactive, provider=provider))
    assert isinstance(sent, SendRequest)
    assert sent.provider == provider
    assert sent.interactive.type == "button"
    assert sent.interactive.action.buttons is not None
    assert [b.reply.id for b in sent.interactive.action.buttons] == ["y"]
    assert sent.to == "+255712345678"


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_minimal_list_message_passes_on_every_provider(provider: str) -> None:
    interactive = {
        "type": "list",
        "body": {"text": "Choose"},
        "action": {"button": "Menu", "sections": [{"title": "All", "rows": [{"id": "1", "title": "One"}]}]},
    }
    sent = validate_send_request(request(interactive, provider=provider))
    assert sent.interactive.type == "list"
    assert sent.interactive.action.sections is not None
    assert sent.interactive.action.sections[0].rows[0].id == "1"


def test_button_type_defaults_to_reply() -> None:
    interactive = button_message(action={"buttons": [{"reply": {"id": "a", "title": "A"}}]})
    sent = validate_send_request(request(interactive))
    assert sent.interactive.action.buttons is not None
    assert sent.interactive.action.buttons[0].type == "reply"


def test_button_type_other_than_reply_is_refused() -> None:
    interactive = button_message(action={"buttons": [{"type": "url", "reply": {"id": "a", "title": "A"}}]})
    assert only_error(request(interactive)) == FieldError(f"{ACTION}.buttons[0].type", "must be one of reply")


def test_a_send_request_is_returned_as_is() -> None:
    sent = validate_send_request(request())
    assert validate_send_request(sent) is sent


def test_full_button_message_with_every_part_passes() -> None:
    interactive = button_message(
        header={"type": "text", "text": "Order 42"},
        footer={"text": "Reply within 24 h"},
        action={"buttons": buttons(3)},
    )
    sent = validate_send_request(
        request(interactive, idempotency_key="order-42", metadata={"campaign": "c1", "n": [1, 2]})
    )
    assert sent.interactive.header is not None
    assert sent.interactive.header.text == "Order 42"
    assert sent.interactive.footer is not None
    assert sent.interactive.footer.text == "Reply within 24 h"
    assert sent.idempotency_key == "order-42"
    assert sent.metadata == {"campaign": "c1", "n": [1, 2]}


# --- phone numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+255712345678", "+255712345678"),
        ("255712345678", "+255712345678"),
        ("+255 712 345 678", "+255712345678"),
        ("255-712-345-678", "+255712345678"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("44.20.7946.0958", "+442079460958"),
        ("\t+44 20 7946 0958\n", "+442079460958"),
        ("+1 234 567", "+1234567"),  # 7 digits: the shortest accepted
        ("+" + "1" * 18, "+" + "1" * 18),  # 18 digits: the longest accepted
        (255712345678, "+255712345678"),  # an int is read as its digits
    ],
)
def test_to_is_normalised_to_plus_and_digits(given: Any, expected: str) -> None:
    sent = validate_send_request(request(to=given))
    assert sent.to == expected
    assert sent.recipient_digits == expected[1:]


PHONE_RULE = "must be an E.164 phone number: 7 to 18 digits, optional leading +, no leading 0"


@pytest.mark.parametrize(
    "given",
    [
        "0712345678",  # leading 0 (a national number)
        "+0712345678",
        "00255712345678",  # international prefix instead of +
        "123456",  # 6 digits: too short
        "+1 234 56",
        "1" * 19,  # 19 digits: too long
        "+" + "1" * 19,
        "+25571234567a",
        "+255 71O 345 678",  # a letter O, not a zero
        "tel:+255712345678",
        "++255712345678",
        "255+712345678",
        "+",
        "",
        "   ",
        123456,  # an int that is too short
        10**18,  # an int of 19 digits
    ],
)
def test_bad_phone_numbers_are_refused(given: Any) -> None:
    assert only_error(request(to=given)) == FieldError("to", PHONE_RULE)


@pytest.mark.parametrize("given", [True, 14155550123.0, ["+14155550123"], {"n": "+14155550123"}])
def test_phone_number_of_wrong_type_is_refused(given: Any) -> None:
    assert only_error(request(to=given)) == FieldError("to", "must be a string of digits")


@pytest.mark.parametrize(
    "given",
    [
        "+1\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",  # Arabic-Indic 2..9
        "+2557\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # fullwidth 1..8
    ],
)
def test_non_ascii_digits_are_refused(given: str) -> None:
    assert only_error(request(to=given)) == FieldError("to", PHONE_RULE)


def test_negative_int_phone_number_is_refused() -> None:
    errors = errors_of(request(to=-14155550123))
    assert [error.path for error in errors] == ["to"]


# --- reply buttons -------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3])
def test_one_to_three_buttons_pass(count: int) -> None:
    sent = validate_send_request(request(button_message(action={"buttons": buttons(count)})))
    assert sent.interactive.action.buttons is not None
    assert len(sent.interactive.action.buttons) == count


def test_zero_buttons_are_refused() -> None:
    interactive = button_message(action={"buttons": []})
    assert only_error(request(interactive)) == FieldError(f"{ACTION}.buttons", "at least 1 button")


@pytest.mark.parametrize("count", [4, 5])
def test_more_than_three_buttons_are_refused_at_the_fourth(count: int) -> None:
    interactive = button_message(action={"buttons": buttons(count)})
    error = only_error(request(interactive))
    assert error == FieldError("interactive.action.buttons[3]", "at most 3 buttons")
    assert str(error) == "interactive.action.buttons[3]: at most 3 buttons"


def test_button_message_without_buttons_is_refused() -> None:
    interactive = button_message(action={})
    assert only_error(request(interactive)) == FieldError(
        f"{ACTION}.buttons", "required for a button message"
    )


def test_button_message_with_list_parts_is_refused() -> None:
    interactive = button_message(action={"buttons": buttons(1), "button": "Menu", "sections": []})
    assert errors_of(request(interactive)) == [
        FieldError(f"{ACTION}.button", "only for list messages"),
        FieldError(f"{ACTION}.sections", "only for list messages"),
    ]


def test_duplicate_button_ids_are_refused() -> None:
    action = {
        "buttons": [
            {"type": "reply", "reply": {"id": "same", "title": "One"}},
            {"type": "reply", "reply": {"id": "other", "title": "Two"}},
            {"type": "reply", "reply": {"id": "same", "title": "Three"}},
        ]
    }
    assert only_error(request(button_message(action=action))) == FieldError(
        f"{ACTION}.buttons[2].reply.id",
        f"button ids must be unique (same as {ACTION}.buttons[0].reply.id)",
    )


def test_duplicate_button_titles_are_refused() -> None:
    action = {
        "buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "Yes"}},
            {"type": "reply", "reply": {"id": "b", "title": "Yes"}},
        ]
    }
    assert only_error(request(button_message(action=action))) == FieldError(
        f"{ACTION}.buttons[1].reply.title",
        f"button titles must be unique (same as {ACTION}.buttons[0].reply.title)",
    )


# --- list messages -------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 5, 10])
def test_one_to_ten_sections_pass(count: int) -> None:
    interactive = with_action(list_message(), sections=sections(*[1] * count))
    sent = validate_send_request(request(interactive))
    assert sent.interactive.action.sections is not None
    assert len(sent.interactive.action.sections) == count


def test_zero_sections_are_refused() -> None:
    interactive = with_action(list_message(), sections=[])
    assert only_error(request(interactive)) == FieldError(f"{ACTION}.sections", "at least 1 section")


def test_eleven_sections_are_refused_at_the_eleventh() -> None:
    # Every section needs a row, so eleven sections also carry an eleventh row.
    interactive = with_action(list_message(), sections=sections(*[1] * 11))
    assert errors_of(request(interactive)) == [
        FieldError(f"{ACTION}.sections[10]", "at most 10 sections"),
        FieldError(f"{ACTION}.sections[10].rows[0]", "at most 10 rows in total across sections"),
    ]


@pytest.mark.parametrize("row_counts", [(1,), (10,), (5, 5), (9, 1), (1,) * 10, (2, 3, 4, 1)])
def test_up_to_ten_rows_in_total_pass(row_counts: tuple[int, ...]) -> None:
    interactive = with_action(list_message(), sections=sections(*row_counts))
    sent = validate_send_request(request(interactive))
    assert sent.interactive.action.sections is not None
    assert sum(len(s.rows) for s in sent.interactive.action.sections) == sum(row_counts)


@pytest.mark.parametrize(
    ("row_counts", "eleventh"),
    [
        ((11,), "sections[0].rows[10]"),
        ((6, 5), "sections[1].rows[4]"),
        ((3, 3, 3, 3), "sections[3].rows[1]"),
        ((10, 1), "sections[1].rows[0]"),
        ((10, 5), "sections[1].rows[0]"),  # only the first row past the limit is reported
    ],
)
def test_the_eleventh_row_across_sections_is_refused(row_counts: tuple[int, ...], eleventh: str) -> None:
    interactive = with_action(list_message(), sections=sections(*row_counts))
    assert only_error(request(interactive)) == FieldError(
        f"{ACTION}.{eleventh}", "at most 10 rows in total across sections"
    )


def test_section_without_rows_is_refused() -> None:
    interactive = with_action(list_message(), sections=[*sections(1), {"title": "Empty", "rows": []}])
    assert only_error(request(interactive)) == FieldError(f"{ACTION}.sections[1].rows", "at least 1 row")


def test_single_section_needs_no_title() -> None:
    interactive = with_action(list_message(), sections=[{"rows": rows(3)}])
    sent = validate_send_request(request(interactive))
    assert sent.interactive.action.sections is not None
    assert sent.interactive.action.sections[0].title is None


def test_section_title_is_required_when_there_are_several_sections() -> None:
    untitled = [{"rows": rows(1, "a")}, {"title": "B", "rows": rows(1, "b")}, {"rows": rows(1, "c")}]
    interactive = with_action(list_message(), sections=untitled)
    rule = "required when there is more than one section"
    assert errors_of(request(interactive)) == [
        FieldError(f"{ACTION}.sections[0].title", rule),
        FieldError(f"{ACTION}.sections[2].title", rule),
    ]


def test_row_ids_must_be_unique_across_sections() -> None:
    two = [
        {"title": "A", "rows": [{"id": "x", "title": "One"}, {"id": "y", "title": "Two"}]},
        {"title": "B", "rows": [{"id": "z", "title": "Three"}, {"id": "x", "title": "Four"}]},
    ]
    interactive = with_action(list_message(), sections=two)
    assert only_error(request(interactive)) == FieldError(
        f"{ACTION}.sections[1].rows[1].id",
        f"row ids must be unique across sections (same as {ACTION}.sections[0].rows[0].id)",
    )


def test_list_message_without_label_or_sections_is_refused() -> None:
    interactive = list_message(action={})
    assert errors_of(request(interactive)) == [
        FieldError(f"{ACTION}.button", "required for a list message (the menu label)"),
        FieldError(f"{ACTION}.sections", "required for a list message"),
    ]


def test_list_message_with_buttons_is_refused() -> None:
    interactive = with_action(list_message(), buttons=buttons(1))
    assert only_error(request(interactive)) == FieldError(f"{ACTION}.buttons", "only for button messages")


# --- text lengths (counted in characters) and empty texts ----------------------------------------


def _body(text: str) -> dict[str, Any]:
    return button_message(body={"text": text})


def _footer(text: str) -> dict[str, Any]:
    return button_message(footer={"text": text})


def _header_text(text: str) -> dict[str, Any]:
    return button_message(header={"type": "text", "text": text})


def _list_header_text(text: str) -> dict[str, Any]:
    return list_message(header={"type": "text", "text": text})


def _button_id(text: str) -> dict[str, Any]:
    action = {"buttons": [*buttons(1), {"type": "reply", "reply": {"id": text, "title": "T"}}]}
    return button_message(action=action)


def _button_title(text: str) -> dict[str, Any]:
    action = {"buttons": [*buttons(1), {"type": "reply", "reply": {"id": "id", "title": text}}]}
    return button_message(action=action)


def _list_label(text: str) -> dict[str, Any]:
    return with_action(list_message(), button=text)


def _with_second_section(section: dict[str, Any]) -> dict[str, Any]:
    return with_action(list_message(), sections=[*sections(1), section])


def _section_title(text: str) -> dict[str, Any]:
    return _with_second_section({"title": text, "rows": rows(1, "x")})


def _row_id(text: str) -> dict[str, Any]:
    return _with_second_section({"title": "B", "rows": [*rows(1, "x"), {"id": text, "title": "T"}]})


def _row_title(text: str) -> dict[str, Any]:
    return _with_second_section({"title": "B", "rows": [*rows(1, "x"), {"id": "i", "title": text}]})


def _row_description(text: str) -> dict[str, Any]:
    row = {"id": "i", "title": "T", "description": text}
    return _with_second_section({"title": "B", "rows": [*rows(1, "x"), row]})


TEXT_FIELDS: list[tuple[Callable[[str], dict[str, Any]], int, str]] = [
    (_body, 1024, "interactive.body.text"),
    (_footer, 60, "interactive.footer.text"),
    (_header_text, 60, f"{HEADER}.text"),
    (_list_header_text, 60, f"{HEADER}.text"),
    (_button_id, 256, f"{ACTION}.buttons[1].reply.id"),
    (_button_title, 20, f"{ACTION}.buttons[1].reply.title"),
    (_list_label, 20, f"{ACTION}.button"),
    (_section_title, 24, f"{ACTION}.sections[1].title"),
    (_row_id, 200, f"{ACTION}.sections[1].rows[1].id"),
    (_row_title, 24, f"{ACTION}.sections[1].rows[1].title"),
    (_row_description, 72, f"{ACTION}.sections[1].rows[1].description"),
]
TEXT_FIELD_IDS = [build.__name__.lstrip("_") for build, _, _ in TEXT_FIELDS]
REQUIRED_TEXT_FIELDS = [field for field in TEXT_FIELDS if field[0] is not _row_description]
REQUIRED_TEXT_FIELD_IDS = [build.__name__.lstrip("_") for build, _, _ in REQUIRED_TEXT_FIELDS]


@pytest.mark.parametrize("char", CHARACTERS)
@pytest.mark.parametrize(("build", "limit", "path"), TEXT_FIELDS, ids=TEXT_FIELD_IDS)
def test_text_at_its_limit_passes(
    build: Callable[[str], dict[str, Any]], limit: int, path: str, char: str
) -> None:
    assert validate_send_request(request(build(char * limit))).interactive is not None


@pytest.mark.parametrize("char", CHARACTERS)
@pytest.mark.parametrize(("build", "limit", "path"), TEXT_FIELDS, ids=TEXT_FIELD_IDS)
def test_text_one_past_its_limit_is_refused(
    build: Callable[[str], dict[str, Any]], limit: int, path: str, char: str
) -> None:
    error = only_error(request(build(char * (limit + 1))))
    assert error == FieldError(path, f"at most {limit} characters (has {limit + 1})")


@pytest.mark.parametrize("text", ["", " ", "\t\n  "])
@pytest.mark.parametrize(("build", "limit", "path"), REQUIRED_TEXT_FIELDS, ids=REQUIRED_TEXT_FIELD_IDS)
def test_empty_or_blank_text_is_refused(
    build: Callable[[str], dict[str, Any]], limit: int, path: str, text: str
) -> None:
    assert only_error(request(build(text))) == FieldError(path, "must not be empty")


@pytest.mark.parametrize("text", ["", "   "])
def test_blank_row_description_is_refused(text: str) -> None:
    assert only_error(request(_row_description(text))) == FieldError(
        f"{ACTION}.sections[1].rows[1].description", "must not be empty"
    )


def test_emoji_title_of_twenty_characters_passes() -> None:
    title = "🎉" * 10 + "ñ" * 10  # 20 code points, 60 bytes in UTF-8
    assert len(title) == 20
    assert len(title.encode()) > 20
    sent = validate_send_request(request(_button_title(title)))
    assert sent.interactive.action.buttons is not None
    assert sent.interactive.action.buttons[1].reply.title == title


# --- headers -------------------------------------------------------------------------------------


def media_header(kind: str, **media: Any) -> dict[str, Any]:
    return {"type": kind, kind: media or {"link": f"https://cdn.example.com/file.{kind}"}}


@pytest.mark.parametrize("kind", MEDIA_HEADERS)
def test_media_headers_are_allowed_on_buttons(kind: str) -> None:
    sent = validate_send_request(request(button_message(header=media_header(kind))))
    assert sent.interactive.header is not None
    assert sent.interactive.header.type == kind


@pytest.mark.parametrize("kind", MEDIA_HEADERS)
def test_media_header_by_uploaded_id_passes(kind: str) -> None:
    header = media_header(kind, id="1234567890")
    assert validate_send_request(request(button_message(header=header))).interactive.header


def test_text_header_is_allowed_on_lists() -> None:
    sent = validate_send_request(request(list_message(header={"type": "text", "text": "Menu"})))
    assert sent.interactive.header is not None
    assert sent.interactive.header.text == "Menu"


@pytest.mark.parametrize("kind", MEDIA_HEADERS)
def test_media_headers_are_refused_on_lists(kind: str) -> None:
    errors = errors_of(request(list_message(header=media_header(kind))))
    # WhatsApp's own rule; every provider's capability check also names the header type.
    assert FieldError(f"{HEADER}.type", "a list message header must be text") in errors
    assert {error.path for error in errors} == {f"{HEADER}.type"}


def test_unknown_header_type_is_refused() -> None:
    header = {"type": "location", "text": "x"}
    assert only_error(request(button_message(header=header))) == FieldError(
        f"{HEADER}.type", "must be one of text, image, video or document"
    )


@pytest.mark.parametrize("interactive", [button_message, list_message])
def test_text_header_requires_text(interactive: Callable[..., dict[str, Any]]) -> None:
    assert only_error(request(interactive(header={"type": "text"}))) == FieldError(
        f"{HEADER}.text", "required for a text header"
    )


@pytest.mark.parametrize("kind", MEDIA_HEADERS)
def test_media_header_requires_its_media_object(kind: str) -> None:
    error = only_error(request(button_message(header={"type": kind})))
    assert error.path == f"{HEADER}.{kind}"
    assert error.rule.startswith("required for a")
    assert kind in error.rule


@pytest.mark.parametrize("kind", MEDIA_HEADERS)
def test_media_header_needs_exactly_one_of_link_or_id(kind: str) -> None:
    both = media_header(kind, link="https://cdn.example.com/f", id="123")
    neither = media_header(kind, filename="f.pdf") if kind == "document" else {"type": kind, kind: {}}
    rule = FieldError(f"{HEADER}.{kind}", "give exactly one of link or id")
    assert only_error(request(button_message(header=both))) == rule
    assert only_error(request(button_message(header=neither))) == rule


@pytest.mark.parametrize(
    "link",
    [
        "ftp://cdn.example.com/a.png",
        "file:///etc/passwd",
        "cdn.example.com/a.png",
        "https:///a.png",
        "javascript:alert(1)",
        "",
    ],
)
def test_media_link_must_be_http_or_https(link: str) -> None:
    header = media_header("image", link=link)
    assert only_error(request(button_message(header=header))) == FieldError(
        f"{HEADER}.image.link", "must be an http(s) URL"
    )


@pytest.mark.parametrize("link", ["http://cdn.example.com/a.png", "https://cdn.example.com/a.png"])
def test_media_link_http_and_https_pass(link: str) -> None:
    header = media_header("image", link=link)
    assert validate_send_request(request(button_message(header=header))).interactive.header


def test_filename_is_allowed_on_a_document_header() -> None:
    header = media_header("document", link="https://cdn.example.com/a.pdf", filename="a.pdf")
    sent = validate_send_request(request(button_message(header=header)))
    assert sent.interactive.header is not None
    assert sent.interactive.header.document is not None
    assert sent.interactive.header.document.filename == "a.pdf"


@pytest.mark.parametrize("kind", ["image", "video"])
def test_filename_is_refused_on_other_media_headers(kind: str) -> None:
    header = media_header(kind, link="https://cdn.example.com/a", filename="a.bin")
    assert only_error(request(button_message(header=header))) == FieldError(
        f"{HEADER}.{kind}.filename", "only a document header has a filename"
    )


def test_header_parts_of_another_type_are_refused() -> None:
    header = {"type": "text", "text": "Hi", "image": {"link": "https://cdn.example.com/a.png"}}
    assert only_error(request(button_message(header=header))) == FieldError(
        f"{HEADER}.image", "not allowed with a text header"
    )


def test_media_header_with_text_or_another_medium_is_refused() -> None:
    header = {
        "type": "video",
        "video": {"link": "https://cdn.example.com/a.mp4"},
        "document": {"id": "9"},
        "text": "Hi",
    }
    assert errors_of(request(button_message(header=header))) == [
        FieldError(f"{HEADER}.document", "not allowed with a video header"),
        FieldError(f"{HEADER}.text", "not allowed with a video header"),
    ]


# --- provider capabilities ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "kind", "allowed"),
    [
        *[(p, k, True) for p in ("briq", "zixflow", "meta") for k in MEDIA_HEADERS],
        ("bird", "image", True),
        ("bird", "video", False),
        ("bird", "document", False),
        ("wacr", "image", False),
        ("wacr", "video", False),
        ("wacr", "document", False),
    ],
)
def test_media_headers_per_provider(provider: str, kind: str, allowed: bool) -> None:
    data = request(button_message(header=media_header(kind)), provider=provider)
    if allowed:
        assert validate_send_request(data).interactive.header is not None
        return
    error = only_error(data)
    assert error.path == "interactive.header.type"
    assert error.rule.startswith(f"{provider} carries only")
    assert error.rule.endswith("headers on button messages")
    assert kind not in error.rule


def test_wacr_image_header_names_the_text_only_rule() -> None:
    data = request(button_message(header=media_header("image")), provider="wacr")
    assert only_error(data) == FieldError(
        "interactive.header.type", "wacr carries only text headers on button messages"
    )


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_text_header_passes_on_every_provider(provider: str) -> None:
    data = request(button_message(header={"type": "text", "text": "Hello"}), provider=provider)
    assert validate_send_request(data).interactive.header is not None


def test_wacr_requires_every_section_title() -> None:
    interactive = with_action(list_message(), sections=[{"rows": rows(2)}])
    assert only_error(request(interactive, provider="wacr")) == FieldError(
        f"{ACTION}.sections[0].title", "required by wacr"
    )


@pytest.mark.parametrize("provider", ["briq", "bird", "zixflow", "meta"])
def test_other_providers_accept_one_untitled_section(provider: str) -> None:
    interactive = with_action(list_message(), sections=[{"rows": rows(2)}])
    assert validate_send_request(request(interactive, provider=provider)).interactive


def test_briq_accepts_a_conversation_id_instead_of_to() -> None:
    sent = validate_send_request(request(provider="briq", to=None, conversation_id=CONVERSATION_ID))
    assert sent.conversation_id == UUID(CONVERSATION_ID)
    assert sent.to is None
    assert sent.recipient_digits is None


def test_briq_refuses_conversation_id_together_with_to() -> None:
    data = request(provider="briq", conversation_id=CONVERSATION_ID)
    assert only_error(data) == FieldError("conversation_id", "give either conversation_id or to")


@pytest.mark.parametrize("provider", ["bird", "zixflow", "wacr", "meta"])
def test_conversation_id_is_briq_only(provider: str) -> None:
    data = request(provider=provider, conversation_id=CONVERSATION_ID)
    assert only_error(data) == FieldError("conversation_id", f"not supported by {provider}; use to")


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_to_is_required_without_a_conversation_id(provider: str) -> None:
    data = request(provider=provider)
    del data["to"]
    assert only_error(data) == FieldError("to", "required")


def test_conversation_id_must_be_a_uuid() -> None:
    data = request(provider="briq", to=None, conversation_id="conversation-1")
    assert only_error(data) == FieldError("conversation_id", "must be a UUID")


@pytest.mark.parametrize("provider", SENDER_REQUIRED)
def test_sender_is_required_for_some_providers(provider: str) -> None:
    data = request(provider=provider)
    del data["sender"]
    assert only_error(data) == FieldError("sender", f"required for {provider}")


@pytest.mark.parametrize("provider", SENDER_OPTIONAL)
def test_sender_is_optional_for_briq_and_wacr(provider: str) -> None:
    data = request(provider=provider)
    assert "sender" not in data
    assert validate_send_request(data).sender is None


@pytest.mark.parametrize(("provider", "limit"), [("briq", 64), *[(p, 256) for p in SENDER_REQUIRED]])
def test_sender_length_per_provider(provider: str, limit: int) -> None:
    assert validate_send_request(request(provider=provider, sender="s" * limit)).sender == "s" * limit
    data = request(provider=provider, sender="s" * (limit + 1))
    assert only_error(data) == FieldError("sender", f"at most {limit} characters for {provider}")


def test_sender_is_stripped() -> None:
    assert validate_send_request(request(sender="  255700000001 ")).sender == "255700000001"


@pytest.mark.parametrize("sender", ["", "   "])
def test_blank_sender_is_refused(sender: str) -> None:
    assert only_error(request(sender=sender)) == FieldError("sender", "must not be empty")


# --- structure -----------------------------------------------------------------------------------


def test_unknown_provider_is_refused() -> None:
    error = only_error(request(provider="whatsapp-web"))
    assert error.path == "provider"
    assert error.rule.startswith("must be one of")
    for name in PROVIDER_NAMES:
        assert name in error.rule


@pytest.mark.parametrize(
    ("place", "path"),
    [
        (lambda d: d, "priority"),
        (lambda d: d["interactive"], "interactive.priority"),
        (lambda d: d["interactive"]["body"], "interactive.body.priority"),
        (lambda d: d["interactive"]["action"], "interactive.action.priority"),
        (lambda d: d["interactive"]["action"]["buttons"][1], f"{ACTION}.buttons[1].priority"),
        (lambda d: d["interactive"]["action"]["buttons"][0]["reply"], f"{ACTION}.buttons[0].reply.priority"),
    ],
)
def test_unknown_fields_are_refused(place: Callable[[dict[str, Any]], dict[str, Any]], path: str) -> None:
    data = request()
    place(data)["priority"] = "high"
    assert only_error(data) == FieldError(path, "unknown field")


def test_unknown_field_in_a_list_row_is_refused() -> None:
    interactive = with_action(
        list_message(), sections=[{"title": "A", "rows": [{"id": "1", "title": "T", "url": "x"}]}]
    )
    assert only_error(request(interactive)) == FieldError(
        f"{ACTION}.sections[0].rows[0].url", "unknown field"
    )


@pytest.mark.parametrize("field", ["provider", "interactive"])
def test_missing_top_level_field_is_refused(field: str) -> None:
    data = request()
    del data[field]
    assert only_error(data) == FieldError(field, "required")


@pytest.mark.parametrize("field", ["type", "body", "action"])
def test_missing_interactive_field_is_refused(field: str) -> None:
    interactive = button_message()
    del interactive[field]
    assert only_error(request(interactive)) == FieldError(f"interactive.{field}", "required")


@pytest.mark.parametrize(
    ("interactive", "path", "rule"),
    [
        (button_message(body="Pick one"), "interactive.body", "must be an object"),
        (button_message(body={"text": 42}), "interactive.body.text", "must be a string"),
        (button_message(type="carousel"), "interactive.type", "must be one of button or list"),
        (button_message(action={"buttons": "yes"}), f"{ACTION}.buttons", "must be a list"),
        (button_message(action={"buttons": ["yes"]}), f"{ACTION}.buttons[0]", "must be an object"),
        (
            button_message(action={"buttons": [{"reply": {"id": 1, "title": "A"}}]}),
            f"{ACTION}.buttons[0].reply.id",
            "must be a string",
        ),
        (button_message(footer="small print"), "interactive.footer", "must be an object"),
        (list_message(action={"button": "M", "sections": {}}), f"{ACTION}.sections", "must be a list"),
        (
            list_message(action={"button": "M", "sections": [{"title": "A"}]}),
            f"{ACTION}.sections[0].rows",
            "required",
        ),
    ],
)
def test_wrong_types_are_refused(interactive: dict[str, Any], path: str, rule: str) -> None:
    assert only_error(request(interactive)) == FieldError(path, rule)


@pytest.mark.parametrize("data", ["{}", None, [], 42])
def test_a_request_that_is_not_an_object_is_refused(data: Any) -> None:
    assert only_error(data) == FieldError("(request)", "must be an object")


def test_several_structural_errors_are_reported_at_once() -> None:
    data = request(button_message(body="x", action={"buttons": "x"}), provider="nope", extra=1)
    errors = errors_of(data)
    assert {error.path for error in errors} == {
        "provider",
        "interactive.body",
        f"{ACTION}.buttons",
        "extra",
    }
    assert FieldError("extra", "unknown field") in errors


def test_several_rule_errors_are_reported_at_once() -> None:
    action = {
        "buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "Same"}},
            {"type": "reply", "reply": {"id": "b", "title": "Same"}},
            *buttons(2),
        ]
    }
    interactive = button_message(body={"text": "b" * 1025}, footer={"text": " "}, action=action)
    data = request(interactive, provider="bird", idempotency_key=None, metadata={"x": "y" * 9000})
    del data["sender"]
    with pytest.raises(MessageValidationError) as info:
        validate_send_request(data)
    expected = [
        FieldError("interactive.body.text", "at most 1024 characters (has 1025)"),
        FieldError("interactive.footer.text", "must not be empty"),
        FieldError(f"{ACTION}.buttons[3]", "at most 3 buttons"),
        FieldError(
            f"{ACTION}.buttons[1].reply.title",
            f"button titles must be unique (same as {ACTION}.buttons[0].reply.title)",
        ),
        FieldError("sender", "required for bird"),
        FieldError("metadata", f"at most {METADATA_MAX_BYTES} bytes as JSON"),
    ]
    assert info.value.errors == expected
    assert str(info.value) == "; ".join(f"{e.path}: {e.rule}" for e in expected)
    assert info.value.as_dicts()[0] == {
        "path": "interactive.body.text",
        "rule": "at most 1024 characters (has 1025)",
    }


# --- idempotency key and metadata ---------------------------------------------------------------


def test_idempotency_key_at_its_limit_passes() -> None:
    key = "k" * IDEMPOTENCY_KEY_MAX
    assert IDEMPOTENCY_KEY_MAX == 255
    assert validate_send_request(request(idempotency_key=key)).idempotency_key == key


@pytest.mark.parametrize(
    ("key", "rule"),
    [("k" * 256, "at most 255 characters"), ("", "must not be empty")],
)
def test_bad_idempotency_key_is_refused(key: str, rule: str) -> None:
    assert only_error(request(idempotency_key=key)) == FieldError("idempotency_key", rule)


def _metadata_of_size(size: int, char: str = "x") -> dict[str, Any]:
    # '{"k":""}' is 8 bytes of compact JSON; the rest is the value, in UTF-8.
    width = len(char.encode())
    filler = size - 8
    assert filler % width == 0
    return {"k": char * (filler // width)}


@pytest.mark.parametrize("char", ["x", "é", "😀"])
def test_metadata_at_its_size_limit_passes(char: str) -> None:
    assert METADATA_MAX_BYTES == 8192
    metadata = _metadata_of_size(8192, char)
    assert validate_send_request(request(metadata=metadata)).metadata == metadata


@pytest.mark.parametrize(("size", "char"), [(8193, "x"), (8194, "é"), (8196, "😀")])
def test_metadata_past_its_size_limit_is_refused(size: int, char: str) -> None:
    assert only_error(request(metadata=_metadata_of_size(size, char))) == FieldError(
        "metadata", "at most 8192 bytes as JSON"
    )


def test_metadata_defaults_to_empty() -> None:
    assert validate_send_request(request()).metadata == {}


@pytest.mark.parametrize(
    ("metadata", "path"),
    [([1, 2], "metadata"), ("campaign", "metadata"), ({"a": {1, 2}}, "metadata.a")],
)
def test_metadata_must_be_a_json_object(metadata: Any, path: str) -> None:
    assert only_error(request(metadata=metadata)).path == path


# --- ids with surrounding spaces -------------------------------------------------------------------
# WhatsApp forbids them and returns the id trimmed in the reply, which would name an id never sent.

ID_SPACES = "must not start or end with whitespace (WhatsApp returns ids trimmed in replies)"


@pytest.mark.parametrize("given", [" yes", "yes ", " yes ", "\tyes", "yes\n", "yes\u00a0"])
def test_button_id_with_surrounding_whitespace_is_refused(given: str) -> None:
    interactive = button_message(
        action={
            "buttons": [
                {"type": "reply", "reply": {"id": "no", "title": "No"}},
                {"type": "reply", "reply": {"id": given, "title": "Yes"}},
            ]
        }
    )
    assert only_error(request(interactive)) == FieldError(f"{ACTION}.buttons[1].reply.id", ID_SPACES)


@pytest.mark.parametrize("given", [" r1", "r1 "])
def test_row_id_with_surrounding_whitespace_is_refused(given: str) -> None:
    interactive = list_message(action={"button": "Menu", "sections": sections(1, 2)})
    interactive["action"]["sections"][1]["rows"][0]["id"] = given
    path = f"{ACTION}.sections[1].rows[0].id"
    assert only_error(request(interactive)) == FieldError(path, ID_SPACES)


def test_ids_with_inner_spaces_pass() -> None:
    interactive = button_message(
        action={"buttons": [{"type": "reply", "reply": {"id": "change seat", "title": "Change"}}]}
    )
    sent = validate_send_request(request(interactive))
    assert sent.interactive.action.buttons is not None
    assert sent.interactive.action.buttons[0].reply.id == "change seat"


def test_a_blank_id_is_empty_not_spaced() -> None:
    interactive = button_message(action={"buttons": [{"type": "reply", "reply": {"id": "  ", "title": "A"}}]})
    assert only_error(request(interactive)) == FieldError(
        f"{ACTION}.buttons[0].reply.id", "must not be empty"
    )


def test_a_spaced_id_that_is_also_too_long_gets_both_errors() -> None:
    long_id = "x" * 256 + " "
    interactive = button_message(
        action={"buttons": [{"type": "reply", "reply": {"id": long_id, "title": "A"}}]}
    )
    path = f"{ACTION}.buttons[0].reply.id"
    assert errors_of(request(interactive)) == [
        FieldError(path, "at most 256 characters (has 257)"),
        FieldError(path, ID_SPACES),
    ]


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_titles_keep_their_own_rules_spaces_around_a_title_pass(provider: str) -> None:
    interactive = button_message(
        action={"buttons": [{"type": "reply", "reply": {"id": "a", "title": " A "}}]}
    )
    validate_send_request(request(interactive, provider=provider))


def test_nul_characters_are_refused_wherever_they_are() -> None:
    data = request(button_message(body={"text": "hi\x00"}), metadata={"note": "a\x00b"})
    assert [(error.path, error.rule) for error in errors_of(data)] == [
        ("interactive.body.text", "must not contain the NUL character (U+0000)"),
        ("metadata.note", "must not contain the NUL character (U+0000)"),
    ]
