"""Explicit dates in a question ("On April 27th", "4月27日", "5月2号") resolved against a store's dates.

The probing questions name a month and day but no year (the paper's users talk over ten days); a
mention is resolved to the store dates with that month and day, so the year never has to be guessed.
"""
from __future__ import annotations

import re
from typing import Iterable

MONTHS = {name: i + 1 for i, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"))}
MONTHS.update({name[:3]: number for name, number in list(MONTHS.items())})
MONTHS["sept"] = 9
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_EN_MONTH_DAY = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b", re.IGNORECASE)
_EN_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH})\b", re.IGNORECASE)
_ZH_MONTH_DAY = re.compile(r"(\d{1,2}|[一二三四五六七八九十]{1,3})\s*月\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*[日号號]")
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_ZH_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")}


def _zh_number(text: str) -> int:
    """Return the value of a small number in digits or Chinese numerals (一 .. 三十一)."""
    if text.isdigit():
        return int(text)
    if "十" not in text:
        return _ZH_DIGITS.get(text, 0)
    tens, _, units = text.partition("十")
    return (_ZH_DIGITS.get(tens, 0) if tens else 1) * 10 + (_ZH_DIGITS.get(units, 0) if units else 0)


def month_days(text: str) -> list[tuple[int, int]]:
    """Return the (month, day) pairs named in ``text``, in order of appearance, without repeats."""
    found: list[tuple[int, tuple[int, int]]] = []
    for match in _EN_MONTH_DAY.finditer(text):
        found.append((match.start(), (MONTHS[match.group(1).lower()], int(match.group(2)))))
    for match in _EN_DAY_MONTH.finditer(text):
        found.append((match.start(), (MONTHS[match.group(2).lower()], int(match.group(1)))))
    for match in _ZH_MONTH_DAY.finditer(text):
        found.append((match.start(), (_zh_number(match.group(1)), _zh_number(match.group(2)))))
    for match in _ISO.finditer(text):
        found.append((match.start(), (int(match.group(2)), int(match.group(3)))))
    pairs = [pair for _, pair in sorted(found) if 1 <= pair[0] <= 12 and 1 <= pair[1] <= 31]
    return list(dict.fromkeys(pairs))


def mentioned_dates(text: str, store_dates: Iterable[str]) -> list[str]:
    """Return the store dates (``YYYY-MM-DD``) whose month and day ``text`` names explicitly."""
    wanted = month_days(text)
    if not wanted:
        return []
    return sorted(date for date in set(store_dates) if (int(date[5:7]), int(date[8:10])) in wanted)
