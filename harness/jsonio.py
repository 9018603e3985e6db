"""Strict JSON / JSON-lines reading with file:line errors, and atomic writes.

Every reader reports malformed input as ``PATH:LINE: field: problem`` (DataError) instead of a
traceback; every writer goes through a temporary file in the same directory and ``os.replace`` so a
killed run never leaves a half-written results file. A file that loads is one that can be written
back (lone UTF-16 surrogates, which JSON escapes allow but UTF-8 cannot hold, are refused at load),
and output locations can be checked before any work starts, so a read-only or full disk is reported
before hours of generation rather than after.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from harness.errors import DataError, UserError

PROBE_BYTES = 64 * 1024
"""Bytes written (and removed) by the output check: enough to hit a full disk or a file-size limit."""

_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def os_reason(err: OSError) -> str:
    """Return the readable cause of an OS error (``No space left on device``), without the path."""
    return err.strerror or type(err).__name__


def check_input(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` if it names a readable regular file (or a folder, for ``what='data'``).

    A symlink loop or a dangling link is named as such instead of "file not found", and a FIFO or
    device is refused because reading one would block forever or never end.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UserError(f"{path}: symlink loop (too many levels of symbolic links)") from None
        if os.path.islink(path):
            raise UserError(f"{path}: broken symlink to '{os.readlink(path)}'") from None
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            raise UserError(f"{path}: file not found") from None
        raise UserError(f"{path}: cannot read ({os_reason(err)})") from None
    if stat.S_ISDIR(info.st_mode):
        if what == "data":
            return path
        raise UserError(f"{path}: is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else "a device"
        raise UserError(f"{path}: is {kind}, not a regular file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: cannot read ({os.strerror(errno.EACCES)})")
    return path


def read_text(path: str | Path) -> str:
    """Return the file's text, with a DataError for a missing file, bad UTF-8 or an empty file."""
    path = check_input(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read ({os_reason(err)})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(path, line, "encoding", f"invalid UTF-8 byte 0x{raw[err.start]:02x}") from None
    if not text.strip():
        raise DataError(path, 1, "file", "file is empty")
    return text


def parse_json(path: str | Path, text: str, line: int = 1, **hooks: Any) -> Any:
    """Parse ``text`` (which starts at ``line`` of ``path``) into a value that can be written back.

    Syntax errors, nesting too deep for the parser and lone surrogates become DataErrors located by
    line (and, for surrogates, by field).
    """
    try:
        value = json.loads(text, **hooks)
    except json.JSONDecodeError as err:
        raise DataError(path, line + err.lineno - 1, "json", err.msg) from None
    except RecursionError:
        raise DataError(path, line + _deepest_line(text) - 1, "json",
                        "nested too deeply to parse (thousands of levels of [ or {)") from None
    match = _LONE_SURROGATE.search(text)
    if match:
        field = _surrogate_field(value)
        if field is not None:
            where = line + text.count("\n", 0, match.start())
            raise DataError(path, where, field or "text", f"lone surrogate '{match.group()}' (not valid Unicode text)")
    return value


def read_json(path: str | Path) -> Any:
    """Parse a whole-file JSON document, locating syntax errors by line."""
    return parse_json(path, read_text(path))


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
            yield number, parse_json(path, line, number)
        except DataError as err:
            last = number == len(lines) and not text.endswith("\n")
            if last and err.field == "json":
                raise DataError(path, number, "json", f"truncated line ({err.problem})") from None
            raise


def _deepest_line(text: str) -> int:
    """Return the line where brackets (outside strings) first reach their deepest nesting."""
    depth, deepest, at = 0, 0, 0
    for token in _JSON_TOKEN.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, token.start()
        elif char in "]}":
            depth -= 1
    return text.count("\n", 0, at) + 1


def _surrogate_field(value: Any, prefix: str = "") -> str | None:
    """Return the dotted path of the first string (key or value) holding a lone surrogate, or None."""
    stack = [(prefix, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return where
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                name = f"{where}.{key}" if where else str(key)
                if not _encodable(key):
                    return name
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _umask() -> int:
    """Return the process umask without changing it (read from /proc where possible: thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def nearest_existing(path: Path) -> Path:
    """Return ``path`` or its closest ancestor that exists (the folder a write would start from)."""
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Raise a UserError now if ``path`` cannot become a folder that takes files; create nothing.

    Checks: the path (or its nearest existing ancestor) is a folder, a probe file can be written to
    it, and that probe's size fits on the disk, so read-only mounts, permissions, a file in the way
    and a full disk are reported before any work starts.
    """
    path = Path(path)
    base = nearest_existing(path)
    if not base.is_dir():
        if base == Path(os.path.abspath(path)):
            raise UserError(f"{path}: exists and is not a directory ({what})")
        raise UserError(f"{path}: cannot create {what}: {base} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".dialbench-probe-")
    except OSError as err:
        raise UserError(f"{path}: cannot write {what} ({os_reason(err)} in {base})") from None
    try:
        try:
            left = memoryview(b"\0" * PROBE_BYTES)
            while left:  # a disk about to fill takes part of a write and fails the next one
                left = left[os.write(fd, left):]
            os.fsync(fd)
        except OSError as err:
            raise UserError(f"{path}: cannot write {what} ({os_reason(err)} in {base})") from None
    finally:
        os.close(fd)
        os.unlink(probe)
    return path


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Raise a UserError now if ``path`` cannot be written atomically later (see check_output_dir)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a file path ({what})")
    base = nearest_existing(path.parent)
    if not base.is_dir():
        raise UserError(f"{path}: cannot create {what}: {base} is not a directory")
    check_output_dir(path.parent, f"folder of {what} {path}")
    return path


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same directory + rename).

    The file gets the mode a plain ``open`` would give (0666 less the umask, or the mode of the
    file it replaces), not mkstemp's private 0600. A failing disk or permission is a UserError
    naming the path.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise UserError(f"{path}: cannot write ({os_reason(err)})") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def json_text(obj: Any, indent: int | None = None) -> str:
    """Return ``obj`` as JSON, readable UTF-8 where possible, ``\\u`` escapes where a string cannot
    be UTF-8 (a lone surrogate from a model's decoder), so writing never fails on a finished result."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    return text if _encodable(text) else json.dumps(obj, indent=indent, ensure_ascii=True)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    write_atomic(path, json_text(obj, indent=2) + "\n")


def write_jsonl(path: str | Path, rows: list[Any]) -> None:
    """Write one JSON object per line, atomically."""
    write_atomic(path, "".join(json_text(r) + "\n" for r in rows))


def warn(message: str) -> None:
    """Print one warning line on stderr (the run goes on)."""
    print(f"dialbench: warning: {message}", file=sys.stderr, flush=True)
