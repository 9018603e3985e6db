"""Strict JSON / JSON-lines reading with file:line errors, and atomic writes.

Every reader reports malformed input as ``PATH:LINE: field: problem`` (DataError) instead of a
traceback; every writer goes through a temporary file in the same directory and ``os.replace`` so a
killed run never leaves a half-written results file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from harness.errors import DataError, UserError


def read_text(path: str | Path) -> str:
    """Return the file's text, with a DataError for a missing file, bad UTF-8 or an empty file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(path, line, "encoding", f"invalid UTF-8 byte 0x{raw[err.start]:02x}") from None
    if not text.strip():
        raise DataError(path, 1, "file", "file is empty")
    return text


def read_json(path: str | Path) -> Any:
    """Parse a whole-file JSON document, locating syntax errors by line."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, "json", err.msg) from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line is a DataError.

    A last line without a newline that does not parse is reported as truncated.
    """
    text = read_text(path)
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            last = number == len(lines) and not text.endswith("\n")
            problem = f"truncated line ({err.msg})" if last else err.msg
            raise DataError(path, number, "json", problem) from None


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same directory + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl(path: str | Path, rows: list[Any]) -> None:
    """Write one JSON object per line, atomically."""
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
