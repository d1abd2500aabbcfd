"""Recipient rows from a CSV or JSONL file, streamed: one row in memory at a time.

:func:`read_rows` yields ``(row_number, values)`` for a usable row and ``(row_number, RowError)``
for a row that cannot be read. Row numbers count data rows from 1: for CSV the header is not a
row (row 1 is the file's second line, unless a quoted value spans lines); for JSONL the row number
is the line number (blank lines are skipped but counted).

The only I/O here is reading the file handle the caller opened.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, TextIO

from wadispatch import jsonread
from wadispatch.campaigns.template import RowError
from wadispatch.errors import WadispatchError

FileFormat = Literal["csv", "jsonl"]
Row = dict[str, str]
ReadResult = tuple[int, Row | RowError]

_SUFFIXES: dict[str, FileFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class FileError(WadispatchError, ValueError):
    """The file as a whole cannot be read (unknown format, no header, missing columns)."""


def detect_format(path: Path) -> FileFormat:
    """``csv`` for ``.csv``, ``jsonl`` for ``.jsonl`` and ``.ndjson``; :class:`FileError` otherwise."""
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise FileError(f"{path.name}: cannot tell the format from its name; give csv or jsonl")
    return found


def read_rows(handle: TextIO, file_format: FileFormat, required: frozenset[str]) -> Iterator[ReadResult]:
    """The file's rows; ``required`` columns missing from a CSV header raise :class:`FileError` at once."""
    if file_format == "csv":
        return _csv_rows(handle, required)
    return _jsonl_rows(handle, required)


def _csv_rows(handle: TextIO, required: frozenset[str]) -> Iterator[ReadResult]:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        raise FileError("the file is empty: a CSV needs a header row naming its columns") from None
    header = [name.strip() for name in header]
    missing = sorted(required - set(header))
    if missing:
        raise FileError(f"the header has no column {', '.join(missing)} (it has: {', '.join(header)})")
    return _csv_records(reader, header, required)


def _csv_records(
    reader: Iterator[list[str]], header: list[str], required: frozenset[str]
) -> Iterator[ReadResult]:
    width = len(header)
    number = 0
    while True:
        number += 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, RowError(f"unreadable CSV: {exc}")
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            number -= 1  # a blank line is not a row
            continue
        if len(fields) > width:
            yield number, RowError(f"{len(fields)} values for {width} columns")
            continue
        row = dict(zip(header, fields, strict=False))
        if len(fields) < width:
            missing = sorted(name for name in header[len(fields) :] if name in required)
            if missing:
                yield number, RowError(f"missing column {', '.join(missing)}")
                continue
        yield number, row


def _jsonl_rows(handle: TextIO, required: frozenset[str]) -> Iterator[ReadResult]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            value = jsonread.loads(line)
        except jsonread.JsonInputError as exc:
            yield number, RowError(str(exc))
            continue
        if not isinstance(value, dict):
            yield number, RowError("must be a JSON object")
            continue
        missing = sorted(required - value.keys())
        if missing:
            yield number, RowError(f"missing column {', '.join(missing)}")
            continue
        row: Row = {}
        for key, item in value.items():
            if isinstance(item, dict | list):
                continue  # nested values cannot fill a text; a placeholder naming one is reported
            row[key] = "" if item is None else str(item) if not isinstance(item, str) else item
        nested = sorted(name for name in required if name not in row)
        if nested:
            yield number, RowError(f"column {', '.join(nested)}: must be a string or a number")
            continue
        yield number, row
