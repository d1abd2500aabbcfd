"""JSON in and out of the hot paths (ledger columns, provider requests and answers) with orjson.

orjson parses and writes the ledger's JSON and the providers' bodies four to ten times faster than
the standard library. What it refuses (integers beyond 64 bits, lone surrogates, ``NaN`` in stored
text, integers orjson would read as floats) goes through the standard library instead, exactly as
before. Unlike the standard library, orjson writes ``NaN`` and infinities as ``null`` (valid JSON,
which PostgreSQL's JSON columns and providers accept, where ``NaN`` was not), and dates, UUIDs and
dataclasses as JSON values rather than failing. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def dumps_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, what ``json.dumps(..., ensure_ascii=False,
    separators=(",", ":"))`` encodes for JSON values (the bodies of provider requests)."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def dumps(value: Any) -> str:
    """``value`` as compact JSON text (the ledger's JSON columns)."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """JSON text or bytes as Python values; :class:`ValueError` when it is not JSON."""
    # orjson reads an integer beyond 64 bits as a float: such text (or one that only looks
    # like it, a long digit run in a string) is read by the standard library, exactly.
    long_digits = _LONG_DIGITS_BYTES if isinstance(text, bytes) else _LONG_DIGITS
    if long_digits.search(text) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(text)
        except ValueError:  # what only the standard library reads (NaN)
            pass
    return json.loads(text)
