"""The hot paths' JSON: orjson, with the standard library for what orjson refuses."""

from __future__ import annotations

import json
import math

import pytest
from wadispatch import jsoncodec


def test_compact_utf8_the_same_as_the_standard_library_writes() -> None:
    value = {"to": "+255712345678", "text": "Karibu — ✓", "n": [1, 2.5, None, True]}
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert jsoncodec.dumps_bytes(value) == expected.encode()
    assert jsoncodec.dumps(value) == expected
    assert jsoncodec.loads(jsoncodec.dumps(value)) == value


def test_what_orjson_refuses_goes_through_the_standard_library() -> None:
    huge = {"id": 10**30}  # beyond 64 bits
    assert jsoncodec.loads(jsoncodec.dumps(huge)) == huge
    assert jsoncodec.dumps_bytes(huge) == b'{"id":1000000000000000000000000000000}'
    assert jsoncodec.dumps({1: "a"}) == '{"1":"a"}'  # a non-string key, as json writes it
    lone = "\ud800"
    assert json.loads(jsoncodec.dumps({"t": lone})) == {"t": lone}
    stored_nan = '{"v": NaN}'  # what the standard library wrote for a NaN before
    assert math.isnan(jsoncodec.loads(stored_nan)["v"])


def test_text_that_is_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        jsoncodec.loads("{not json")
