"""The one JSON reader for everything wadispatch parses from outside: API bodies, webhook bodies,
campaign JSONL rows and templates, files given to the CLI. Pure: no I/O.

JSON itself sets no limits; this reader does, so that hostile input is refused with a short reason
instead of exhausting the stack, the CPU or Python's integer-to-text limit:

* nesting: at most :data:`MAX_DEPTH` objects and arrays inside one another. WhatsApp's own objects
  are shallow (a Meta status webhook is 10 levels, an interactive list 6); 64 leaves room for
  free-form ``metadata`` while keeping every walk over a value cheap and every path short;
* integers: at most :data:`MAX_INT_DIGITS` digits (any 64-bit integer fits); a longer one is
  refused before it is converted, so a 5,000-digit number costs nothing;
* other numbers: finite; ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, and a float that
  overflows (``1e999999``) would silently become infinity;
* strings (and keys): at most :data:`MAX_STRING_CHARS` characters, and text: no NUL (U+0000)
  and no lone surrogate, which JSON's escapes can spell but no text can carry;
* size: the caller's (the API's body limit, ``WADISPATCH_API_MAX_BODY_BYTES``), checked first.

Every violation raises :class:`JsonInputError` naming where (a JSON path cut to
:data:`PATH_SEGMENTS` segments, ``$.metadata.a.a…``) and why.

The standard library's parser is used with hooks rather than orjson: orjson is faster but turns
integers beyond 64 bits into floats without a word (3.13), so the original digits, and the limit
on them, are lost.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from wadispatch.errors import WadispatchError

MAX_DEPTH = 64
"""Objects and arrays inside one another, the outermost counting 1."""
MAX_INT_DIGITS = 20
"""Digits of an integer (without its sign): 18446744073709551615, the largest 64-bit one, has 20."""
MAX_STRING_CHARS = 65_536
"""Characters of a string or key (WhatsApp's longest text, a message body, is 4,096)."""
PATH_SEGMENTS = 10
"""Segments of a path shown in an error; deeper ones are cut with ``…``."""
_KEY_CHARS = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: What JSON's ``\\u`` escapes can spell but no text can carry: NUL (PostgreSQL refuses it) and
#: lone UTF-16 surrogates (not Unicode characters: they cannot even be encoded as UTF-8).
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_NOT_TEXT_RULE = "a string with U+0000 or a lone surrogate (\\ud800-\\udfff): not text"


class JsonInputError(WadispatchError, ValueError):
    """JSON that is invalid or breaks a limit: ``path`` (``$`` for the whole text) and ``rule``."""

    def __init__(self, path: str, rule: str) -> None:
        self.path = path
        self.rule = rule
        super().__init__(rule if path == "$" else f"{path}: {rule}")

    def describe(self, what: str) -> str:
        """A short sentence about ``what`` (``the body``), never quoting the input."""
        if self.path != "$":
            return f"{what} at {self.path}: {self.rule}"
        return f"{what} is {self.rule}" if self.rule.startswith("not ") else f"{what}: {self.rule}"


class _Refused:
    """A hook's verdict on a literal, found (with its path) by the walk after parsing."""

    __slots__ = ("rule",)

    def __init__(self, rule: str) -> None:
        self.rule = rule


def _int(text: str) -> int | _Refused:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        return _Refused(f"an integer of {digits} digits: at most {MAX_INT_DIGITS}")
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    if math.isinf(value):
        return _Refused(f"a number too large for a float ({text[:24]}): numbers must be finite")
    return value


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not JSON (numbers must be finite)")


def loads(data: bytes | str, *, max_bytes: int | None = None) -> Any:
    """The JSON value in ``data`` (bytes are UTF-8), or :class:`JsonInputError`."""
    size = len(data) if isinstance(data, bytes) else None
    if max_bytes is not None and (size if size is not None else len(data.encode())) > max_bytes:
        raise JsonInputError("$", f"larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonInputError("$", "not UTF-8 text") from None
    try:
        value = json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            "$", f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        # Far deeper than MAX_DEPTH (the C parser recurses): find where it first went too deep.
        raise JsonInputError(_deep_path(data), _too_deep()) from None
    check(value)
    return value


def check(value: Any) -> None:
    """Check an already parsed value against the limits (depth, strings, refused numbers);
    iterative, so a value of any depth is judged without recursion."""
    # Each entry: (value, depth, node) where node = (parent node, key) rebuilds the path on error.
    stack: list[tuple[Any, int, tuple[Any, Any] | None]] = [(value, 0, None)]
    while stack:
        item, depth, node = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                raise JsonInputError(_path(node), _too_deep())
            for key, child in item.items():
                if isinstance(key, str) and len(key) > MAX_STRING_CHARS:
                    raise JsonInputError(
                        _path(node), f"a key of {len(key)} characters: at most {MAX_STRING_CHARS}"
                    )
                if isinstance(key, str) and _NOT_TEXT.search(key):
                    raise JsonInputError(
                        _path(node), "a key with " + _NOT_TEXT_RULE.removeprefix("a string with ")
                    )
                stack.append((child, depth + 1, (node, key)))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                raise JsonInputError(_path(node), _too_deep())
            stack.extend((child, depth + 1, (node, index)) for index, child in enumerate(item))
        elif isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                raise JsonInputError(
                    _path(node), f"a string of {len(item)} characters: at most {MAX_STRING_CHARS}"
                )
            if _NOT_TEXT.search(item):
                raise JsonInputError(_path(node), _NOT_TEXT_RULE)
        elif isinstance(item, _Refused):
            raise JsonInputError(_path(node), item.rule)
        elif isinstance(item, float) and not math.isfinite(item):
            raise JsonInputError(_path(node), "numbers must be finite")
        elif isinstance(item, int) and not isinstance(item, bool) and _too_long(item):
            raise JsonInputError(_path(node), f"an integer of more than {MAX_INT_DIGITS} digits")


def _too_long(number: int) -> bool:
    # Compared by size, not by printing: Python refuses to print integers past 4,300 digits.
    return abs(number) >= 10**MAX_INT_DIGITS


def _too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels of objects and arrays"


def _path(node: tuple[Any, Any] | None) -> str:
    """``$.a[0].b``, cut after :data:`PATH_SEGMENTS` segments."""
    keys: list[Any] = []
    while node is not None:
        node, key = node
        keys.append(key)
    keys.reverse()
    return _format(keys)


def _format(keys: list[Any]) -> str:
    parts = ["$"]
    for key in keys[:PATH_SEGMENTS]:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        else:
            text = str(key)
            short = text[:_KEY_CHARS] + ("…" if len(text) > _KEY_CHARS else "")
            parts.append(
                f".{short}" if _NAME.fullmatch(text) else f"[{json.dumps(short, ensure_ascii=False)}]"
            )
    if len(keys) > PATH_SEGMENTS:
        parts.append("…")
    return "".join(parts)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^{}\[\],:"\s]+|\s+|.', re.S)


def _deep_path(text: str) -> str:
    """The path of the first container nested deeper than :data:`MAX_DEPTH` in ``text``.

    A token scan that stops there: only the text before that point is looked at.
    """
    # Each frame: [is_object, key or index, waiting for a key].
    frames: list[list[Any]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        frame = frames[-1] if frames else None
        if token in ("{", "["):
            if len(frames) >= MAX_DEPTH:
                break
            frames.append([token == "{", None if token == "{" else 0, token == "{"])
        elif token in ("}", "]"):
            if frames:
                frames.pop()
        elif frame is None:
            continue
        elif token == ",":
            if frame[0]:
                frame[2] = True
            else:
                frame[1] += 1
        elif token.startswith('"') and frame[0] and frame[2]:
            try:
                frame[1] = json.loads(token)
            except ValueError:
                frame[1] = token[1:-1]
            frame[2] = False
    keys = [frame[1] for frame in frames if frame[1] is not None]
    return _format(keys)
