"""What a recipient is: an E.164 phone number or a WhatsApp business-scoped user id (BSUID). Pure.

Since April 2026 Meta identifies WhatsApp users by a BSUID as well as by phone number; a user
who adopted a username may have no phone number a business can see. A BSUID is the user's ISO
3166 alpha-2 country code, a period, and up to 128 letters and digits, e.g.
``US.13491208655302741918``; a parent BSUID, shared by linked business portfolios, has ``ENT.``
after the country code, e.g. ``US.ENT.11815799212886844830``. BSUIDs are kept exactly as Meta
gives them (no case folding).

This module is the one place that says what a BSUID looks like: the validator, the campaign
file reader, the adapters and the log masking all ask it.
"""

from __future__ import annotations

import re

BSUID_ID_MAX = 128
BSUID_PATTERN = re.compile(rf"[A-Z]{{2}}\.(?:ENT\.)?[A-Za-z0-9]{{1,{BSUID_ID_MAX}}}")
"""A BSUID or a parent BSUID (``fullmatch`` it)."""
BSUID_MAX_LENGTH = len("US.ENT.") + BSUID_ID_MAX
"""135: the longest parent BSUID the pattern accepts."""
BSUID_RULE = (
    "must be a BSUID: a 2-letter country code in capitals, optionally .ENT, a period, then 1 to "
    f"{BSUID_ID_MAX} letters or digits, e.g. US.13491208655302741918"
)

# Two letters and a period cannot begin a phone number however it is written: such a value is
# judged (and refused) as a BSUID, anything else as a phone number.
_BSUID_SHAPE = re.compile(r"[A-Za-z]{2}\.")


def looks_like_bsuid(value: str) -> bool:
    """Whether ``value`` is meant as a BSUID (it starts with two letters and a period)."""
    return _BSUID_SHAPE.match(value.strip()) is not None


def is_bsuid(value: str | None) -> bool:
    """Whether ``value`` is a valid BSUID or parent BSUID, exactly (no surrounding spaces)."""
    return value is not None and BSUID_PATTERN.fullmatch(value) is not None
