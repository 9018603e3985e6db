"""Two kinds of failure: problems the user can fix (UserError, exit 2, one line) and bugs (traceback, exit 1).

The CLI catches UserError and prints ``str(error)`` on stderr without a traceback, so every message
must name what to fix: ``PATH:LINE: field: problem`` for data, the valid choices for names.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable


class UserError(Exception):
    """An error caused by user input; printed as one line, exit status 2."""

    exit_code = 2


class DataError(UserError):
    """Malformed input data, located at ``path:line`` and naming the offending field."""

    def __init__(self, path: str | Path, line: int | None, field: str, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {field}: {problem}")


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """Return the error for an unknown registry name, listing close matches and all valid choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return UserError(f"unknown {kind} '{name}'{hint}; valid choices: {', '.join(choices)}")


def first_line(err: BaseException) -> str:
    """Return the first non-empty line of an exception's message (library errors run to pages)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:300]
