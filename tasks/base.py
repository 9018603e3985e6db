"""Shared machinery of dialbench's own tasks: typed options, format selection, skip accounting.

Each task declares its options as ``Option`` specs so an unknown or mistyped option is a UserError
(the CLI passes strings such as ``expand_contractions=true``; they are coerced here). Rules that
intentionally drop an example call ``skip(reason)``; ``data inspect`` and the runner read the
``skipped`` counts so a smaller-than-expected example set is always explained.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from harness.errors import UserError
from harness.records import Dialogue, Example
from harness.task import Task

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One task option: its default, its kind (bool/int/str/path) and, for str, the valid choices."""

    default: Any
    kind: type = str
    choices: tuple[str, ...] = ()
    help: str = ""

    def coerce(self, task: str, name: str, value: Any) -> Any:
        """Return ``value`` converted to this option's kind, or raise a UserError naming the option."""
        if value is None:
            return None
        if self.kind is bool and not isinstance(value, bool):
            word = str(value).strip().lower()
            if word not in TRUE | FALSE:
                raise UserError(f"task '{task}' option '{name}': expected true or false, got '{value}'")
            value = word in TRUE
        elif self.kind is int and not isinstance(value, int):
            try:
                value = int(str(value))
            except ValueError:
                raise UserError(f"task '{task}' option '{name}': expected an integer, got '{value}'") from None
        elif self.kind is str:
            value = str(value)
        if self.choices and value not in self.choices:
            raise UserError(f"task '{task}' option '{name}': '{value}' is not one of {', '.join(self.choices)}")
        return value


class DatasetTask(Task):
    """A Task whose options are declared specs and whose loader detects the published format."""

    option_specs: ClassVar[dict[str, Option]] = {}

    def __init__(self, protocol: str | None = None, **options: Any) -> None:
        super().__init__(protocol, **options)
        self.skipped: Counter[str] = Counter()
        """Why examples were intentionally not built, with counts (reset by each build_examples)."""

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Return every declared option (defaults filled in); unknown names are a UserError."""
        unknown = sorted(set(options) - set(self.option_specs))
        if unknown:
            valid = ", ".join(sorted(self.option_specs)) or "none"
            raise UserError(f"task '{self.name}' has no option(s) {', '.join(unknown)}; valid: {valid}")
        return {name: spec.coerce(self.name, name, options.get(name, spec.default))
                for name, spec in self.option_specs.items()}

    def choose_format(self, path: Path, fmt: str | None, detect: Callable[[Path], str]) -> str:
        """Return ``fmt`` if it is one of ``formats``, else the format ``detect`` reads from the content."""
        if fmt:
            if fmt not in self.formats:
                raise UserError(f"task '{self.name}' cannot read format '{fmt}'; valid: {', '.join(self.formats)}")
            return fmt
        return detect(Path(path))

    def skip(self, reason: str) -> None:
        """Record one intentionally skipped example."""
        self.skipped[reason] += 1

    def start_build(self) -> None:
        """Reset the skip counts at the start of build_examples."""
        self.skipped = Counter()

    def counts(self, dialogues: Sequence[Dialogue], examples: Sequence[Example]) -> dict[str, Any]:
        """Return the numbers ``dialbench data inspect`` prints (tasks add their own)."""
        return {
            "dialogues": len(dialogues),
            "turns": sum(len(d.turns) for d in dialogues),
            "examples": len(examples),
            "skipped": dict(sorted(self.skipped.items())),
        }
