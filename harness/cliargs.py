"""Parsing shared by several commands: ``TASK=PATH`` pairs, comma lists, ``KEY=VALUE`` options."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.errors import UserError, unknown_name
from harness.jsonio import check_input


def comma_list(value: str | None) -> list[str]:
    """Return the non-empty items of a comma-separated list."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def assignments(values: Iterable[str] | None, flag: str) -> dict[str, str]:
    """Return ``{KEY: VALUE}`` from ``KEY=VALUE`` strings; a value without '=' is a UserError."""
    pairs: dict[str, str] = {}
    for value in values or ():
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise UserError(f"{flag} expects KEY=VALUE, got '{value}'")
        pairs[key.strip()] = rest.strip()
    return pairs


def task_paths(values: Iterable[str] | None, flag: str, known_tasks: Sequence[str],
               selected: Sequence[str] | None = None) -> dict[str, Path]:
    """Return ``{task: Path}`` from ``TASK=PATH`` strings, checking task names and that paths exist.

    A path must be a readable file or folder: a FIFO, a symlink loop or a dangling link is named
    as such here, before any task starts.
    """
    paths = {}
    for task, path in assignments(values, flag).items():
        check_task_names([task], flag, known_tasks, selected)
        try:
            check_input(path, "data")
        except UserError as err:
            raise UserError(f"{err} ({flag} {task}=...)") from None
        paths[task] = Path(path)
    return paths


def check_task_names(names: Iterable[str], flag: str, known_tasks: Sequence[str],
                     selected: Sequence[str] | None = None) -> None:
    """Raise a UserError for a task id (in ``--profile TASK=...`` and alike) that is unknown, with
    a did-you-mean, or that is not one of the ``selected`` tasks (it would be silently ignored)."""
    for name in names:
        if name not in known_tasks:
            raise unknown_name(f"task in {flag}", name, known_tasks)
        if selected is not None and name not in selected:
            raise UserError(f"{flag} names task '{name}', which is not in --tasks ({', '.join(selected)})")


def check_limit(limit: int | None) -> int | None:
    """Return ``--limit`` if it is a positive count (a negative one would slice from the end)."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    return limit


def typed(value: str) -> Any:
    """Return ``value`` as int, float or bool when it looks like one (for --set KEY=VALUE)."""
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
