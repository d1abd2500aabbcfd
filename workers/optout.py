"""Opt-out keywords: which inbound texts mean "stop writing to me" (pure: no I/O).

A text matches when, once normalised, it *is* one of the configured words; a sentence that merely
contains one ("don't stop now") does not. Normalising:

* Unicode NFKD, combining marks dropped: accent-insensitive (``arret`` matches ``ARRÊT``, which
  phone keyboards often type without its accent);
* case-folded (``Stop``, ``STOP``, ``stop``; ``ß`` as ``ss``);
* every white space removed (`` STOP ``, ``STOP ALL`` matching ``STOPALL``);
* punctuation and symbols at either end removed (``Stop.``, ``STOP!!``, ``"stop"``, ``STOP 🛑``);
  inside a word they stay (``opt-out`` is not ``optout``).

Words come from ``WADISPATCH_OPT_OUT_KEYWORDS``, comma-separated, any language.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: The words matched when ``WADISPATCH_OPT_OUT_KEYWORDS`` is not set.
DEFAULT_KEYWORDS = "STOP,UNSUBSCRIBE,STOPALL,CANCEL,END,QUIT"
#: The value of ``WADISPATCH_OPT_OUT_KEYWORDS`` that turns matching off (as an empty value does
#: where one can be given: an empty environment variable counts as unset).
OFF = "none"
#: The longest word accepted (a keyword is a short reply, not a sentence).
MAX_WORD_LENGTH = 64


def normalise(text: str) -> str:
    """``text`` as it is compared: no accents, case-folded, no white space, no punctuation or
    symbols at its ends."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(char for char in decomposed if not unicodedata.combining(char) and not char.isspace())
    folded = unicodedata.normalize("NFKC", kept.casefold())
    start, end = 0, len(folded)
    while start < end and _is_edge(folded[start]):
        start += 1
    while end > start and _is_edge(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _is_edge(char: str) -> bool:
    """Punctuation, symbols (emoji included) and format characters (zero-width joiners,
    variation selectors) are stripped at the ends of a text."""
    return unicodedata.category(char)[0] in "PSCM"


@dataclass(frozen=True)
class Keywords:
    """The configured opt-out words, by their normalised form."""

    words: dict[str, str]
    """Normalised form -> the word as configured."""

    @property
    def enabled(self) -> bool:
        return bool(self.words)

    def match(self, *texts: str | None) -> str | None:
        """The configured word the first of ``texts`` that is one matches, or ``None`` (a text
        over four times :data:`MAX_WORD_LENGTH` is a sentence: never normalised nor matched)."""
        for text in texts:
            if text and len(text) <= 4 * MAX_WORD_LENGTH:
                word = self.words.get(normalise(text))
                if word is not None:
                    return word
        return None


def parse_keywords(value: str) -> Keywords:
    """Parse ``WADISPATCH_OPT_OUT_KEYWORDS``: comma-separated words; empty or ``none``: no words.

    Raises ``ValueError`` naming the item at fault (the settings' error names the setting): an
    empty item (two commas in a row), a word with no letter or digit, or one longer than
    :data:`MAX_WORD_LENGTH`. A word given twice (in any case or accent) counts once.
    """
    if not value.strip() or value.strip().lower() == OFF:
        return Keywords({})
    words: dict[str, str] = {}
    for position, item in enumerate(value.split(","), start=1):
        word = item.strip()
        if not word:
            raise ValueError(
                f"item {position} is empty (comma-separated words, "
                f"e.g. {DEFAULT_KEYWORDS!r}; {OFF!r} turns opt-out keywords off)"
            )
        if len(word) > MAX_WORD_LENGTH:
            raise ValueError(
                f"item {position} is {len(word)} characters long "
                f"(at most {MAX_WORD_LENGTH}: a keyword is a short reply)"
            )
        key = normalise(word)
        if not any(char.isalnum() for char in key):
            raise ValueError(f"item {position} ({word!r}) has no letter or digit")
        words.setdefault(key, word)
    return Keywords(words)
