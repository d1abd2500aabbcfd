"""Recipients' phone numbers to E.164 with Google's libphonenumber (the ``phonenumbers`` package). Pure.

``+255 712 345 678``, ``00255712345678`` and, with a default region of ``TZ``, ``0712 345 678``
all become ``+255712345678``. A number that is not a valid number of its country is refused, and
so is one with a letter in it: libphonenumber would read ``1-800-FLOWERS`` as keypad digits, so a
stray word in a file's phone column could become someone's number.
A business-scoped user id (BSUID, :mod:`wadispatch.recipients`) is kept as it is written.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from wadispatch.campaigns.errors import CampaignInputError
from wadispatch.errors import WadispatchError
from wadispatch.recipients import BSUID_RULE, is_bsuid, looks_like_bsuid

_SEPARATORS = re.compile(r"[\s\-().]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_COUNTRY_CODES = phonenumbers.COUNTRY_CODE_TO_REGION_CODE


class PhoneError(WadispatchError, ValueError):
    """A recipient's phone number cannot be used; the message says why."""


class PhoneNormaliser:
    """Normalises phone numbers to E.164 for one default region (``None``: only international form).

    ``region`` is an ISO 3166 code such as ``TZ`` (another raises
    :class:`~wadispatch.campaigns.errors.CampaignInputError`); numbers written with a leading ``+``
    or ``00`` never need it.
    """

    def __init__(self, region: str | None = None) -> None:
        if region is not None:
            region = region.upper()
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise CampaignInputError(
                    f"region: unknown region {region!r}: use an ISO 3166 code such as TZ or KE"
                )
        self.region = region

    def __call__(self, raw: object) -> str:
        """``raw`` as ``+<digits>`` (a BSUID as written, less surrounding spaces), or :class:`PhoneError`."""
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = f"+{raw}"
        if not isinstance(raw, str):
            raise PhoneError("phone: must be a string of digits")
        if looks_like_bsuid(raw):
            bsuid = raw.strip()
            if not is_bsuid(bsuid):
                raise PhoneError(f"phone: {BSUID_RULE}")
            return bsuid
        if any(char.isalpha() for char in raw):
            raise PhoneError("phone: not a phone number: it has letters (never read as keypad digits)")
        compact = _SEPARATORS.sub("", raw)
        if not compact:
            raise PhoneError("phone: missing")
        if compact.startswith("00"):
            compact = "+" + compact[2:]
        elif not compact.startswith("+") and self.region is None:
            if compact.startswith("0"):
                raise PhoneError("phone: no country code: write +<country code><number>, or give a region")
            compact = "+" + compact  # digits alone are read as international without a region
        if _E164.fullmatch(compact):
            number = _from_e164(compact)
            if number is not None:
                if not phonenumbers.is_valid_number(number):
                    raise PhoneError("phone: not a valid number for its country")
                return compact
        try:
            number = phonenumbers.parse(compact, self.region)
        except NumberParseException as exc:
            raise PhoneError(f"phone: not a phone number ({exc._msg.rstrip('.')})") from None
        if not phonenumbers.is_valid_number(number):
            raise PhoneError("phone: not a valid number for its country")
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _from_e164(compact: str) -> phonenumbers.PhoneNumber | None:
    """The fast path for ``+<digits>`` (most files): split off the country code without a full parse.

    Country codes are prefix-free, so the first of 1, 2 or 3 digits that is one is the one. A
    national number with a leading 0 (Italy's) takes the full parse instead.
    """
    for length in (1, 2, 3):
        code = int(compact[1 : 1 + length])
        if code in _COUNTRY_CODES:
            national = compact[1 + length :]
            if not national or national[0] == "0":
                return None
            return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return None
