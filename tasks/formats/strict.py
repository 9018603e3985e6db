"""Strict field access for the dataset loaders: every problem becomes ``PATH:LINE: field: problem``.

Published files are read exactly as released, and anything unexpected (a missing field, a wrong
type, an impossible date, a duplicated id) stops the load with a DataError that names the file,
the line and the field, because silently dropping or coercing records would change the counts the
papers report. Whole-file JSON documents carry no line numbers after parsing, so ``top_level``
finds the line where each top-level entry starts in the source text.
"""
from __future__ import annotations

import bisect
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from harness.errors import DataError
from harness.jsonio import parse_json, read_text

TYPE_NAMES = {str: "a string", list: "a list", dict: "an object", int: "an integer", bool: "true/false",
              float: "a number"}


def type_name(value: Any) -> str:
    """Return a JSON-ish name of ``value``'s type for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {str: "string", list: "list", dict: "object", int: "integer", float: "number"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Where:
    """A place in an input file, used to raise located errors."""

    path: Path
    line: int | None = None

    def error(self, field: str, problem: str) -> DataError:
        """Return the DataError for ``field`` at this place."""
        return DataError(self.path, self.line, field, problem)

    def at(self, line: int | None) -> "Where":
        """Return the same file at another line."""
        return Where(self.path, line)


def check_type(value: Any, kind: type | tuple[type, ...], where: Where, field: str) -> Any:
    """Return ``value`` if it has type ``kind`` (bool never counts as int), else raise a DataError."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        wanted = " or ".join(TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise where.error(field, f"expected {wanted}, got {type_name(value)}")
    return value


def get(obj: Any, key: str, kind: type | tuple[type, ...], where: Where, prefix: str = "",
        optional: bool = False, default: Any = None) -> Any:
    """Return ``obj[key]`` checked against ``kind``; a missing required key is a DataError."""
    field = f"{prefix}{key}"
    if not isinstance(obj, dict):
        raise where.error(prefix.rstrip(".") or "record", f"expected an object, got {type_name(obj)}")
    if key not in obj or (optional and obj[key] is None):
        if optional:
            return default
        raise where.error(field, "missing field")
    return check_type(obj[key], kind, where, field)


def text(obj: Any, key: str, where: Where, prefix: str = "", optional: bool = False) -> str:
    """Return a non-empty string field (surrounding whitespace removed)."""
    value = get(obj, key, str, where, prefix, optional=optional, default="")
    if not value.strip() and not optional:
        raise where.error(f"{prefix}{key}", "empty text")
    return value.strip()


def strings(value: Any, where: Where, field: str, allow_empty: bool = False) -> tuple[str, ...]:
    """Return a list of strings as a tuple; non-strings and (unless allowed) an empty list are errors."""
    check_type(value, list, where, field)
    if not value and not allow_empty:
        raise where.error(field, "empty list")
    for index, item in enumerate(value):
        check_type(item, str, where, f"{field}[{index}]")
    return tuple(value)


def check_date(value: Any, where: Where, field: str) -> str:
    """Return ``value`` if it is a real calendar date written YYYY-MM-DD."""
    check_type(value, str, where, field)
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.isoformat() != value:
        raise where.error(field, f"bad date '{value}' (expected YYYY-MM-DD)")
    return value


def unique(ids: Iterable[tuple[str, Where]], field: str) -> None:
    """Raise a DataError at the second occurrence of any id."""
    seen: dict[str, Where] = {}
    for key, where in ids:
        if key in seen:
            first = seen[key]
            raise where.error(field, f"duplicate id '{key}' (first at line {first.line})")
        seen[key] = where


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise _DuplicateKey(dup)
    return dict(pairs)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def load_json(path: Path) -> tuple[str, Any]:
    """Return ``(text, document)`` of a whole-file JSON document; duplicate object keys are errors.

    ``json`` keeps the last of duplicated keys silently, which would hide a duplicated user or
    episode id, so keys are checked while parsing; the error is then located by a second,
    position-aware walk (only on this error path), because the parser's hook knows no positions.
    """
    source = read_text(path)
    try:
        return source, parse_json(path, source, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKey as err:
        found = _locate_duplicate(source)
        if found is None:  # pragma: no cover - the walk agrees with the parser on valid JSON
            raise DataError(path, None, "id", f"duplicate key '{err.key}'") from None
        line, field, key, first = found
        raise DataError(path, line, field, f"duplicate key '{key}' (first at line {first})") from None


def _locate_duplicate(source: str) -> tuple[int, str, str, int] | None:
    """Return ``(line, field, key, first line)`` of the first duplicated key in document order.

    ``field`` is ``id`` for a top-level key (a user or episode id) and the dotted path of the key
    otherwise, e.g. ``Amy.history.2023-04-27[3].query``.
    """
    decoder = json.JSONDecoder()
    newlines = [i for i, ch in enumerate(source) if ch == "\n"]

    def line_at(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    def walk(pos: int, where: str) -> int:
        pos = _skip_ws(source, pos)
        opener = source[pos] if pos < len(source) else ""
        if opener not in "[{" or not opener:
            return decoder.raw_decode(source, pos)[1]
        closer = "}" if opener == "{" else "]"
        seen: dict[str, int] = {}
        pos, index = _skip_ws(source, pos + 1), 0
        while source[pos] != closer:
            if opener == "{":
                key, end = decoder.raw_decode(source, pos)
                if key in seen:
                    raise _Found(line_at(pos), f"{where}.{key}" if where else "id", key, seen[key])
                seen[key] = line_at(pos)
                pos = _skip_ws(source, _skip_ws(source, end) + 1)  # past the ':'
                child = f"{where}.{key}" if where else key
            else:
                child, index = f"{where}[{index}]", index + 1
            pos = _skip_ws(source, walk(pos, child))
            if source[pos] == ",":
                pos = _skip_ws(source, pos + 1)
        return pos + 1

    try:
        walk(0, "")
    except _Found as found:
        return found.args
    except (RecursionError, ValueError, IndexError):
        return None
    return None


class _Found(Exception):
    """Carries the location of a duplicated key out of the walk."""


def top_level(source: str, document: Any) -> list[tuple[Any, int]]:
    """Return ``(key or index, line)`` of each top-level entry of a parsed JSON list or object.

    The document has already parsed, so this walk only has to skip values with ``raw_decode``.
    """
    decoder = json.JSONDecoder()
    pos = _skip_ws(source, 0)
    opener = source[pos]
    pos = _skip_ws(source, pos + 1)
    entries: list[tuple[Any, int]] = []
    index = 0
    while pos < len(source) and source[pos] not in "]}":
        if opener == "{":
            key, pos = decoder.raw_decode(source, pos)
            pos = _skip_ws(source, pos)
            pos = _skip_ws(source, pos + 1)  # the ':'
        else:
            key, index = index, index + 1
        entries.append((key, source.count("\n", 0, pos) + 1))
        _, pos = decoder.raw_decode(source, pos)
        pos = _skip_ws(source, pos)
        if pos < len(source) and source[pos] == ",":
            pos = _skip_ws(source, pos + 1)
    if len(entries) != len(document):  # pragma: no cover - the document parsed, so this is a bug
        raise RuntimeError("top-level JSON walk disagrees with the parser")
    return entries


def _skip_ws(source: str, pos: int) -> int:
    while pos < len(source) and source[pos] in " \t\r\n":
        pos += 1
    return pos


def find_line(source: str, start_line: int, needle: str) -> int:
    """Return the line of the first ``needle`` at or after ``start_line`` (or ``start_line``)."""
    offset = 0
    for _ in range(start_line - 1):
        offset = source.find("\n", offset) + 1
    found = source.find(needle, offset)
    return start_line if found < 0 else source.count("\n", 0, found) + 1
