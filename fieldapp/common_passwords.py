"""Passwords too common to allow, generated here from patterns rather than downloaded.

People who must pick a long password reach for the same few shapes: a word with a year or "123!"
on the end, a keyboard row, a run of digits, the season and the year, the agency's own words.
``is_common`` refuses those and every leetspeak spelling of them ("P@ssw0rd2024!"). The list
is held as its parts (stems, endings, beginnings) and a password is checked by splitting it, so
it stays small in memory however many combinations it stands for.

Every candidate and every password is compared in a folded form (``fold``): lower case, spaces
and separators dropped, look-alike characters merged. Folding is many-to-one, so one folded
entry stands for all its spellings; a password that folds onto an entry is a variation of it.
"""
from __future__ import annotations

import re
from functools import lru_cache
from itertools import product

# Words people build passwords from. Written for this list; the agency's words come first.
AGENCY_WORDS = (
    "fostercare", "foster", "fosterparent", "fosterkids", "childwelfare", "childrensdivision",
    "childrenservices", "division", "caseworker", "casework", "casemanager", "socialwork",
    "socialworker", "supervisor", "oncall", "missing", "missingchild", "runaway", "placement",
    "family", "families", "children", "kids", "welfare", "safety", "agency", "county", "state",
    "missouri", "springfield", "greene", "fieldapp", "field", "court", "judge", "ncmec",
)
EVERYDAY_WORDS = (
    "password", "passw", "passwd", "pass", "letmein", "welcome", "admin", "administrator", "login",
    "changeme", "secret", "default", "access", "master", "trustno1", "iloveyou", "loveyou",
    "love", "monkey", "dragon", "sunshine", "princess", "football", "baseball", "basketball",
    "soccer", "hockey", "shadow", "superman", "batman", "starwars", "whatever", "freedom",
    "flower", "summer", "winter", "spring", "autumn", "fall", "season", "january", "february",
    "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "monday", "friday", "chocolate", "cookie", "computer", "internet", "qwerty",
    "abc", "hello", "hellothere", "jesus", "god", "blessed", "faith", "family", "mother",
    "father", "daddy", "mommy", "baby", "angel", "michael", "jennifer", "jessica", "ashley",
    "chiefs", "royals", "cardinals", "tigers", "eagles", "cowboys", "america", "liberty",
    "welcome", "office", "work", "company", "business", "thanks", "thankyou", "please",
)
WORDS = tuple(dict.fromkeys(AGENCY_WORDS + EVERYDAY_WORDS))  # in order, once each

# What people put after (and sometimes before) the word.
PUNCTUATION = ("", "!", "!!", "!!!", "?", "#", "@", "$", "*", ".", "1!", "!1", "#1")
NUMBERS = (("",) + tuple(str(n) for n in range(100)) + tuple(f"{n:02d}" for n in range(10))
           + ("123", "1234", "12345", "123456", "1234567", "12345678", "123456789", "000",
              "007", "111", "321", "666", "777", "911", "999", "4321", "54321"))
YEARS = tuple(str(year) for year in range(1940, 2041))
SHORT_YEARS = tuple(f"{year % 100:02d}" for year in range(1940, 2041))

KEYBOARD_ROWS = ("1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./",
                 "!@#$%^&*()_+", "qwertzuiop", "azertyuiop")
# Down the columns, left to right: 1qaz2wsx3edc...
KEYBOARD_COLUMNS = "".join("".join(column) for column in zip("1234567890", "qwertyuiop",
                                                             "asdfghjkl;", "zxcvbnm,./"))
SEQUENCES = ("abcdefghijklmnopqrstuvwxyz", "0123456789" * 3)

# Look-alikes folded onto one character. Digits are folded as well, on both sides of the
# comparison, so "summer2024" and "$umm3r2O24" meet.
_LOOKALIKES = str.maketrans({"@": "a", "4": "a", "8": "b", "(": "c", "3": "e", "6": "g",
                             "9": "g", "1": "l", "!": "l", "|": "l", "i": "l", "0": "o",
                             "$": "s", "5": "s", "7": "t", "+": "t", "2": "z"})
_SEPARATORS = re.compile(r"[\s._\-]+")
# Something said twice or more, and nothing else: "aaaaaaaaaaaa", "12!12!12!12!",
# "Fall2025Fall2025". The password is then only as strong as the part repeated.
_REPEATED_UNIT = re.compile(r"(.+?)\1+", re.S)


def fold(password: str) -> str:
    """The form in which passwords are compared: lower case, no separators, look-alikes merged."""
    return _SEPARATORS.sub("", password.lower()).translate(_LOOKALIKES)


def _runs(text: str, shortest: int = 6) -> set[str]:
    """Every stretch of ``text`` (and of it backwards) at least ``shortest`` long."""
    found = set()
    for source in (text, text[::-1]):
        for start in range(len(source)):
            for end in range(start + shortest, len(source) + 1):
                found.add(source[start:end])
    return found


def _walks() -> set[str]:
    walks = set()
    for row in KEYBOARD_ROWS:
        walks |= _runs(row)
    walks |= _runs("".join(KEYBOARD_ROWS[1:4]), shortest=10)  # qwerty...asdf...zxcv
    walks |= _runs(KEYBOARD_COLUMNS)
    for sequence in SEQUENCES:
        walks |= _runs(sequence)
    return walks


@lru_cache(maxsize=1)
def stems() -> frozenset[str]:
    """The cores of common passwords, folded: words and their obvious variants, the season
    and the year, keyboard walks and sequences."""
    made = set(WORDS)
    made |= {word + word for word in WORDS}  # "welcomewelcome"
    made |= {"my" + word for word in WORDS} | {"ilove" + word for word in WORDS}
    made |= {word + "s" for word in WORDS}
    made |= {season + year for season, year in product(
        ("spring", "summer", "autumn", "fall", "winter"), YEARS + SHORT_YEARS)}
    made |= _walks()
    return frozenset(fold(stem) for stem in made)


@lru_cache(maxsize=1)
def endings() -> frozenset[str]:
    """What goes after a stem, folded: numbers or years between marks ("2024!", "#1!", "123")."""
    return frozenset(fold(before + number + after) for before, number, after
                     in product(("", "#", "@", "!", "$", "*", "_"), NUMBERS + YEARS, PUNCTUATION))


@lru_cache(maxsize=1)
def beginnings() -> frozenset[str]:
    """What goes before a stem, folded: a number, a year or a mark ("1", "2024", "!")."""
    return frozenset(fold(start) for start in NUMBERS + YEARS + PUNCTUATION)


def _is_made_of_parts(folded: str) -> bool:
    """True when ``folded`` is a beginning, a stem and an ending, in that order."""
    known_stems, known_endings = stems(), endings()
    for i in range(len(folded) + 1):
        if folded[:i] not in beginnings():
            continue
        rest = folded[i:]
        if any(rest[:j] in known_stems and rest[j:] in known_endings for j in range(len(rest) + 1)):
            return True
    return False


def repeats_itself(password: str) -> bool:
    return _REPEATED_UNIT.fullmatch(password.lower()) is not None


def is_common(password: str) -> bool:
    """True for a password on the list (in any spelling of it), or one that repeats itself."""
    return repeats_itself(password) or _is_made_of_parts(fold(password))
