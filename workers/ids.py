"""Message ids: time-ordered random UUIDs of version 7 (RFC 9562), as text.

The Unix time in milliseconds, then 74 random bits. Messages are inserted by the thousand: with
random (version 4) ids every insert lands on pages all over the id indexes of messages and
transitions, and the database writes most of those pages again; ids that grow with time are
appended at the indexes' end. 74 random bits keep them unguessable and unique.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

# The variant bits (10) in the first hex digit of the fourth group, as RFC 9562 sets them.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _format(stamp_ms: int, bits: str) -> str:
    stamp = f"{stamp_ms:012x}"
    return f"{stamp[:8]}-{stamp[8:]}-7{bits[:3]}-{_VARIANT[bits[3]]}{bits[4:7]}-{bits[7:19]}"


def new_message_id() -> str:
    """One message id (safe from any thread)."""
    return _format(time.time_ns() // 1_000_000, os.urandom(10).hex())


def message_ids() -> Iterator[str]:
    """Message ids for one bulk insert (one thread), their random bits read from the OS a
    thousand ids at a time."""
    while True:
        block = os.urandom(10 * 1024).hex()
        for start in range(0, len(block), 20):
            yield _format(time.time_ns() // 1_000_000, block[start : start + 20])
