"""The bounded JSON reader: every limit, refused numbers, and hostile depth answered fast with a
short path."""

from __future__ import annotations

import time

import pytest
from wadispatch import jsonread
from wadispatch.errors import WadispatchError
from wadispatch.jsonread import MAX_DEPTH, MAX_INT_DIGITS, MAX_STRING_CHARS, JsonInputError


def refused(text: str | bytes, **kwargs: int) -> JsonInputError:
    with pytest.raises(JsonInputError) as info:
        jsonread.loads(text, **kwargs)
    return info.value


def nested(depth: int, inner: str = "1") -> str:
    return '{"a":' * depth + inner + "}" * depth


def test_ordinary_json_is_read() -> None:
    text = '{"to": "+255712345678", "n": -12, "f": 1.5, "ok": true, "none": null, "l": [1, "x"]}'
    assert jsonread.loads(text.encode()) == {
        "to": "+255712345678",
        "n": -12,
        "f": 1.5,
        "ok": True,
        "none": None,
        "l": [1, "x"],
    }


def test_the_error_is_a_wadispatch_value_error() -> None:
    assert issubclass(JsonInputError, WadispatchError) and issubclass(JsonInputError, ValueError)


def test_depth_up_to_the_limit_is_read_and_one_more_is_refused() -> None:
    assert jsonread.loads(nested(MAX_DEPTH - 1, "{}")) is not None  # MAX_DEPTH objects
    error = refused(nested(MAX_DEPTH, "{}"))
    assert "deeper than 64" in error.rule
    assert error.path == "$.a.a.a.a.a.a.a.a.a.a…"


@pytest.mark.parametrize("depth", [900, 5_000, 100_000])
def test_a_hostile_depth_is_refused_fast_with_a_short_path(depth: int) -> None:
    started = time.perf_counter()
    error = refused('{"metadata":' + nested(depth) + "}")
    assert time.perf_counter() - started < 0.5
    assert error.path == "$.metadata.a.a.a.a.a.a.a.a.a…"
    assert len(str(error)) < 120


def test_deep_arrays_name_their_indexes() -> None:
    error = refused("[0, " + "[" * 100_000 + "]" * 100_000 + "]")
    assert error.path == "$[1][0][0][0][0][0][0][0][0][0]…"


def test_integers_up_to_the_limit_are_read_and_longer_ones_are_refused() -> None:
    assert jsonread.loads(f"[{'9' * MAX_INT_DIGITS}, -{'9' * MAX_INT_DIGITS}]")[0] == 10**MAX_INT_DIGITS - 1
    error = refused('{"metadata": {"n": [1, ' + "9" * (MAX_INT_DIGITS + 1) + "]}}")
    assert (error.path, error.rule) == ("$.metadata.n[1]", "an integer of 21 digits: at most 20")


def test_a_5000_digit_integer_is_refused_without_converting_it() -> None:
    started = time.perf_counter()
    error = refused('{"metadata": {"n": ' + "7" * 5000 + "}}")
    assert time.perf_counter() - started < 0.1
    assert error.path == "$.metadata.n" and "5000 digits" in error.rule
    assert "7777" not in str(error)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999999", "-1e999999", "1e309"])
def test_non_finite_numbers_are_not_json(literal: str) -> None:
    error = refused('{"metadata": {"x": ' + literal + "}}")
    assert error.path == "$.metadata.x"
    assert "finite" in error.rule


def test_strings_and_keys_over_the_limit_are_refused() -> None:
    assert jsonread.loads('"' + "a" * MAX_STRING_CHARS + '"')
    assert refused('{"a": ["' + "a" * (MAX_STRING_CHARS + 1) + '"]}').path == "$.a[0]"
    assert "key of" in refused('{"' + "k" * (MAX_STRING_CHARS + 1) + '": 1}').rule


def test_the_size_limit_is_the_callers() -> None:
    assert jsonread.loads(b"[1]", max_bytes=3) == [1]
    assert refused(b"[1] ", max_bytes=3).rule == "larger than 3 bytes"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (b"\xff\xfe", "not UTF-8 text"),
        ("{not json", "not valid JSON: line 1 column 2"),
        ("[1,\n 2", "not valid JSON: line 2 column 3"),
    ],
)
def test_invalid_text_says_where(text: str | bytes, rule: str) -> None:
    error = refused(text)
    assert error.path == "$" and error.rule.startswith(rule)


def test_paths_quote_odd_keys_and_cut_long_ones() -> None:
    error = refused('{"a b": {"' + "k" * 50 + '": NaN}}')
    assert error.path == '$["a b"].' + "k" * 32 + "…"


def test_check_judges_python_values_of_any_depth() -> None:
    value: dict[str, object] = {}
    inner = value
    for _ in range(100_000):
        inner["a"] = {}
        inner = inner["a"]  # type: ignore[assignment]
    with pytest.raises(JsonInputError, match="deeper than 64"):
        jsonread.check(value)
    with pytest.raises(JsonInputError, match="more than 20 digits"):
        jsonread.check({"n": 10**5000})
    with pytest.raises(JsonInputError, match="finite"):
        jsonread.check({"n": float("nan")})
    jsonread.check({"n": 10**MAX_INT_DIGITS - 1, "ok": True})


def test_errors_describe_their_subject() -> None:
    assert refused("{x").describe("the body").startswith("the body is not valid JSON: line 1")
    assert (
        refused('{"a": NaN}').describe("the body")
        == "the body at $.a: NaN is not JSON (numbers must be finite)"
    )
    assert refused(b"[1] ", max_bytes=3).describe("the body") == "the body: larger than 3 bytes"


@pytest.mark.parametrize(
    "text", [r'{"a": "\u0000"}', r'{"a": ["x\ud800"]}', r'{"a": "\udfff"}', r'{"\ud800": 1}']
)
def test_nul_and_lone_surrogates_are_not_text(text: str) -> None:
    with pytest.raises(JsonInputError) as refused:
        jsonread.loads(text)
    assert "U+0000 or a lone surrogate" in refused.value.rule


def test_a_surrogate_pair_is_one_character_and_welcome() -> None:
    assert jsonread.loads(r'{"a": "\ud83d\ude00"}') == {"a": "\N{GRINNING FACE}"}
