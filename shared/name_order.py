"""The order people's names are listed in, as Vietnamese lists do: by given name (the
last word), then family name (the first), then the middle names; letters in the
Vietnamese alphabet's order (a ă â b c d đ e ê ... o ô ơ ... u ư ...), tones after the
letters (CLDR's Vietnamese collation: none, huyền, hỏi, ngã, sắc, nặng), case last.
So "Bùi Gia Ánh" comes before "Bùi Gia Yến", and "Anh" before "Ánh" before "Bình".

Pure Python: ICU (PyICU) needs a system library pip cannot install. `sort_key` gives
bytes, so that a database orders by a stored key exactly as Python does: bytes compare
byte by byte in SQLite and PostgreSQL (bytea) alike, whatever the server's collation.
"""
from __future__ import annotations

import functools
import unicodedata

# The Vietnamese alphabet, with f, j, w, z (foreign names) where Latin puts them.
# A letter is its base and the marks that make it another letter (breve, circumflex, horn).
_BREVE, _CIRCUMFLEX, _HORN = "\u0306", "\u0302", "\u031b"
ALPHABET = ["a", "a" + _BREVE, "a" + _CIRCUMFLEX, "b", "c", "d", "đ", "e", "e" + _CIRCUMFLEX, "f", "g", "h", "i",
            "j", "k", "l", "m", "n", "o", "o" + _CIRCUMFLEX, "o" + _HORN, "p", "q", "r", "s", "t", "u", "u" + _HORN,
            "v", "w", "x", "y", "z"]
_LETTERS = {letter: rank for rank, letter in enumerate(ALPHABET)}
_LETTER_MARKS = frozenset({_BREVE, _CIRCUMFLEX, _HORN})
# Tones in CLDR's order; the first weight (1) is no tone.
TONES = {"\u0300": 2, "\u0309": 3, "\u0303": 4, "\u0301": 5, "\u0323": 6}
_OTHER_MARK = 7  # a mark Vietnamese does not use (another language's name)

# Primary weights, 3 bytes each, all above the level and field separators (0x01, 0x00).
# Tiers: a space, other non-letters (digits, hyphens), Vietnamese letters, other letters.
_BASE, _TIER = 0x020000, 0x110000
_LEVEL, _FIELD = b"\x01", b"\x00"


def _characters(text: str):
    """(base, marks) per character of the NFD form: "ấ" is ("a", "\u0302\u0301")."""
    base, marks = None, ""
    for ch in unicodedata.normalize("NFD", text):
        if base is not None and unicodedata.combining(ch):
            marks += ch
            continue
        if base is not None:
            yield base, marks
        base, marks = ch, ""
    if base is not None:
        yield base, marks


def _primary(base: str, marks: str) -> int:
    lower = base.lower()
    letter = lower + "".join(m for m in marks if m in _LETTER_MARKS)
    if letter in _LETTERS:
        return _BASE + 2 * _TIER + _LETTERS[letter]
    if lower.isspace():
        return _BASE
    if not lower.isalpha():
        return _BASE + _TIER + ord(lower)
    return _BASE + 3 * _TIER + ord(lower)


@functools.lru_cache(maxsize=8192)  # names share their words: a cohort has few family and given names
def _field_key(text: str) -> bytes:
    """One field (a word, or the middle names) at three levels: letters, tones, case."""
    chars = list(_characters(text))
    primary = b"".join(_primary(b, m).to_bytes(3, "big") for b, m in chars)
    tones = bytes(max((TONES.get(m, _OTHER_MARK if m not in _LETTER_MARKS else 1) for m in marks), default=1) + 1
                  for _, marks in chars)
    case = bytes(3 if base != base.lower() else 2 for base, _ in chars)
    return primary + _LEVEL + tones + _LEVEL + case


def name_parts(name: str) -> tuple[str, str, str]:
    """(given, family, middle) of a name written family first, given last."""
    words = name.split()
    if not words:
        return "", "", ""
    if len(words) == 1:
        return words[0], "", ""
    return words[-1], words[0], " ".join(words[1:-1])


def sort_key(name: str | None) -> bytes:
    """The key a list of learners is ordered by (ascending): compare keys, not names."""
    return _FIELD.join(_field_key(part) for part in name_parts(name or ""))
