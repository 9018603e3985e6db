"""Parsing shared by several commands: ``TASK=PATH`` pairs, comma lists, ``KEY=VALUE`` options."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.errors import UserError, unknown_name


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


def task_paths(values: Iterable[str] | None, flag: str, known_tasks: Sequence[str]) -> dict[str, Path]:
    """Return ``{task: Path}`` from ``TASK=PATH`` strings, checking task names and that paths exist."""
    paths = {}
    for task, path in assignments(values, flag).items():
        if task not in known_tasks:
            raise unknown_name("task", task, known_tasks)
        if not Path(path).exists():
            raise UserError(f"{path}: file not found ({flag} {task}=...)")
        paths[task] = Path(path)
    return paths


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
