"""Recipients' phone numbers to E.164 with Google's libphonenumber (the ``phonenumbers`` package). Pure.

``+255 712 345 678``, ``00255712345678`` and, with a default region of ``TZ``, ``0712 345 678``
all become ``+255712345678``. A number that is not a valid number of its country is refused, and
so is one with a letter in it: libphonenumber would read ``1-800-FLOWERS`` as keypad digits, so a
stray word in a file's phone column could become someone's number.
A business-scoped user id (BSUID, :mod:`wadispatch.recipients`) is kept as it is written.

A number already written ``+<digits>`` (most files) is judged without the full parse: the region
is picked and the number checked against libphonenumber's own metadata, the same way
``phonenumbers.is_valid_number`` does, with the patterns compiled once per country code.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
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
        if raw.__class__ is str and _E164.fullmatch(raw) is not None:
            # Already ``+<digits>`` (most files): none of the checks below would change it.
            return self._international(raw)
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
            return self._international(compact)
        return self._parsed(compact)

    def _international(self, compact: str) -> str:
        """A number written ``+<digits>``: as it is, once found valid."""
        valid = _valid_e164(compact)
        if valid is None:
            return self._parsed(compact)
        if not valid:
            raise PhoneError("phone: not a valid number for its country")
        return compact

    def _parsed(self, compact: str) -> str:
        try:
            number = phonenumbers.parse(compact, self.region)
        except NumberParseException as exc:
            raise PhoneError(f"phone: not a phone number ({exc._msg.rstrip('.')})") from None
        if not phonenumbers.is_valid_number(number):
            raise PhoneError("phone: not a valid number for its country")
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _valid_e164(compact: str) -> bool | None:
    """Whether ``+<digits>`` is a valid number, as ``phonenumbers.is_valid_number`` says; ``None``
    when it needs the full parse (an unknown country code, a national number with a leading 0).

    Country codes are prefix-free, so the first of 1, 2 or 3 digits that is one is the one.
    """
    for length in (1, 2, 3):
        code = compact[1 : 1 + length]
        if code in _CODE_TEXTS:
            national = compact[1 + length :]
            if not national or national[0] == "0":
                return None  # Italy's leading 0 is kept apart by the parser
            validity = _VALIDITY.get(code)
            if validity is None:
                validity = _VALIDITY[code] = _CountryValidity(int(code))
            return validity(national)
    return None


class _Desc:
    """One number type of a region's metadata, its pattern compiled once."""

    def __init__(self, desc: Any) -> None:
        pattern = None if desc is None else desc.national_number_pattern
        self.pattern = re.compile(pattern) if pattern else None
        self.lengths = frozenset(desc.possible_length) if desc is not None else frozenset()

    def matches(self, national: str) -> bool:
        # libphonenumber's _is_number_matching_desc: the possible lengths first, then the pattern.
        if self.pattern is None:
            return False
        if self.lengths and len(national) not in self.lengths:
            return False
        return self.pattern.fullmatch(national) is not None


class _RegionRules:
    """Whether a national number has a known type in one region (libphonenumber's
    ``_number_type_helper(...) != UNKNOWN``: the general pattern, then any type's), with the types'
    patterns that admit a length joined into one pattern for that length."""

    _TYPES = (
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
        "fixed_line",
    )

    def __init__(self, metadata: Any) -> None:
        self.general = _Desc(metadata.general_desc)
        types = [_Desc(getattr(metadata, name)) for name in self._TYPES]
        if not metadata.same_mobile_and_fixed_line_pattern:
            types.append(_Desc(metadata.mobile))
        self.types = tuple(desc for desc in types if desc.pattern is not None)
        # Of alternatives without groups of their own, the whole matches when one of them does.
        self.joinable = all(desc.pattern.groups == 0 for desc in self.types)  # type: ignore[union-attr]
        self.by_length: dict[int, re.Pattern[str] | None] = {}
        leading = metadata.leading_digits
        self.leading = re.compile(leading) if leading is not None else None

    def known_type(self, national: str) -> bool:
        if not self.general.matches(national):
            return False
        if not self.joinable:
            return any(desc.matches(national) for desc in self.types)
        length = len(national)
        try:
            joined = self.by_length[length]
        except KeyError:
            patterns = [
                f"(?:{desc.pattern.pattern})"  # type: ignore[union-attr]
                for desc in self.types
                if not desc.lengths or length in desc.lengths
            ]
            try:
                joined = re.compile("|".join(patterns)) if patterns else None
            except re.error:  # a pattern that cannot sit inside another: each on its own
                self.joinable = False
                return any(desc.matches(national) for desc in self.types)
            self.by_length[length] = joined
        return joined is not None and joined.fullmatch(national) is not None


class _CountryValidity:
    """``phonenumbers.is_valid_number`` for the numbers of one country code, without building a
    ``PhoneNumber``: the region is picked and the number checked as libphonenumber does (a
    test compares the two over every country code)."""

    def __init__(self, code: int) -> None:
        regions = _COUNTRY_CODES[code]
        self.single = len(regions) == 1
        self.regions: list[tuple[_RegionRules | None, _RegionRules | None]] = []
        for region in regions:
            # The metadata picking the region (region_code_for_number's), then the one checking the
            # number in it (is_valid_number_for_region's): the same but for the non-geographic "001".
            choosing = PhoneMetadata.metadata_for_region(region.upper(), None)
            checking = PhoneMetadata.metadata_for_region_or_calling_code(code, region.upper())
            if (
                checking is not None
                and region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
                and code != phonenumbers.country_code_for_valid_region(region)
            ):
                checking = None  # the region belongs to another code: never valid here
            self.regions.append(
                (
                    None if choosing is None else _RegionRules(choosing),
                    None if checking is None else _RegionRules(checking),
                )
            )

    def __call__(self, national: str) -> bool:
        if self.single:
            checking = self.regions[0][1]
            return checking is not None and checking.known_type(national)
        for choosing, checking in self.regions:
            if choosing is None:
                continue
            if choosing.leading is not None:
                if choosing.leading.match(national) is None:
                    continue
            elif not choosing.known_type(national):
                continue
            return checking is not None and checking.known_type(national)
        return False


_CODE_TEXTS = frozenset(str(code) for code in _COUNTRY_CODES)
_VALIDITY: dict[str, _CountryValidity] = {}
"""Per country code as written (``"255"``), built on first use."""
