"""The task plug-in API: how a dataset in its published format becomes scoring examples.

A task declares its id, the input formats it reads, how examples are built from dialogues (the
paper's rule, documented in the subclass docstring), its typed options, its default metric profile
and default systems, and how a prompt-based system should ask an instruction model for the output.
Options are ``Option`` specs so an unknown or mistyped option is a UserError (the CLI passes
strings such as ``expand_contractions=true``; they are coerced here). Rules that intentionally drop
an example call ``skip(reason)``; ``data inspect`` and the runner read the ``skipped`` counts so a
smaller-than-expected example set is always explained. Tasks are registered in ``harness/plugins.py``.
"""
from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from harness.errors import UserError
from harness.records import Dialogue, Example, Response

ChatMessage = dict[str, str]
"""``{"role": "system"|"user"|"assistant", "content": str}``, the transformers chat-template shape."""

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


def truth(value: Any) -> bool | None:
    """Return a bool given as a bool or as text (true/false, 1/0, yes/no, on/off), else None: the one
    reading of true/false options that task, system and profile options share (``--set`` gives text)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    return True if word in TRUE else False if word in FALSE else None


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
            flag = truth(value)
            if flag is None:
                raise UserError(f"task '{task}' option '{name}': expected true or false, got '{value}'")
            value = flag
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


class Task(ABC):
    """Base class of every task; subclasses set the class variables and implement load/build/prompt."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    description: ClassVar[str] = ""
    language: ClassVar[str] = "en"
    formats: ClassVar[tuple[str, ...]] = ()
    protocols: ClassVar[tuple[str, ...]] = ("default",)
    option_specs: ClassVar[dict[str, Option]] = {}
    default_profile: ClassVar[str] = "basic"
    default_systems: ClassVar[tuple[str, ...]] = ("copy_last", "retrieval", "zero_shot_lm")
    samples_folder: ClassVar[Path | None] = None
    """Where the bundled samples are; None = a ``samples`` folder beside the task's module."""

    def __init__(self, protocol: str | None = None, **options: Any) -> None:
        protocol = protocol or self.protocols[0]
        if protocol not in self.protocols:
            raise UserError(
                f"task '{self.name}' has no protocol '{protocol}'; valid choices: {', '.join(self.protocols)}"
            )
        self.protocol = protocol
        self.options = self.check_options(options)
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

    # --- data -----------------------------------------------------------------------------------
    @abstractmethod
    def load(self, path: Path, fmt: str | None = None) -> list[Dialogue]:
        """Return the dialogues in ``path``; raise DataError naming file, line and field on bad input."""

    @abstractmethod
    def build_examples(self, dialogues: Sequence[Dialogue]) -> list[Example]:
        """Return the scoring examples cut from ``dialogues`` by this task's (paper's) rule."""

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

    def sample_path(self, split: str = "test", required: bool = True) -> Path | None:
        """Return the bundled synthetic sample of ``split`` ("test" or "train"); None if absent and
        not ``required`` (a plug-in task may bundle a test sample only)."""
        folder = self.samples_folder or Path(sys.modules[type(self).__module__].__file__ or ".").resolve().parent / "samples"
        matches = sorted(folder.glob(f"{self.name}.{split}.*"))
        if not matches:
            if not required:
                return None
            raise UserError(f"task '{self.name}' has no bundled {split} sample in {folder}")
        return matches[0]

    # --- prompting (used by prompt-based systems such as zero_shot_lm) ------------------------
    @abstractmethod
    def prompt(self, example: Example) -> list[ChatMessage]:
        """Return the chat messages that ask an instruction model for this example's output."""

    def parse_output(self, example: Example, text: str) -> Response:
        """Turn raw generated text into a Response (tasks with labels parse them here)."""
        return Response(example_id=example.id, text=text.strip())

    def info(self) -> dict[str, Any]:
        """Return the task's identity for config.json and signatures."""
        return {
            "name": self.name,
            "version": self.version,
            "protocol": self.protocol,
            "options": self.options,
            "language": self.language,
            "default_profile": self.default_profile,
        }
