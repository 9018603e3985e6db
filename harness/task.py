"""The task plug-in API: how a dataset in its published format becomes scoring examples.

A task declares its id, the input formats it reads, how examples are built from dialogues (the
paper's rule, documented in the subclass docstring), its default metric profile and default
systems, and how a prompt-based system should ask an instruction model for the output.
Tasks are registered lazily in ``tasks/__init__.py`` (``TASKS``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence

from harness.errors import UserError
from harness.records import Dialogue, Example, Response

ChatMessage = dict[str, str]
"""``{"role": "system"|"user"|"assistant", "content": str}``, the transformers chat-template shape."""


class Task(ABC):
    """Base class of every task; subclasses set the class variables and implement load/build."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    description: ClassVar[str] = ""
    language: ClassVar[str] = "en"
    formats: ClassVar[tuple[str, ...]] = ()
    protocols: ClassVar[tuple[str, ...]] = ("default",)
    default_profile: ClassVar[str] = "basic"
    default_systems: ClassVar[tuple[str, ...]] = ("copy_last", "retrieval", "zero_shot_lm")
    scores_text: ClassVar[bool] = True
    """False for tasks whose output is not compared to reference texts."""

    def __init__(self, protocol: str | None = None, **options: Any) -> None:
        protocol = protocol or self.protocols[0]
        if protocol not in self.protocols:
            raise UserError(
                f"task '{self.name}' has no protocol '{protocol}'; valid choices: {', '.join(self.protocols)}"
            )
        self.protocol = protocol
        self.options = self.check_options(options)

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Validate task options; the base task accepts none, so typos never pass silently."""
        if options:
            raise UserError(f"task '{self.name}' takes no option(s) {', '.join(sorted(options))}")
        return {}

    # --- data -----------------------------------------------------------------------------------
    @abstractmethod
    def load(self, path: Path, fmt: str | None = None) -> list[Dialogue]:
        """Return the dialogues in ``path``; raise DataError naming file, line and field on bad input."""

    @abstractmethod
    def build_examples(self, dialogues: Sequence[Dialogue]) -> list[Example]:
        """Return the scoring examples cut from ``dialogues`` by this task's (paper's) rule."""

    def sample_path(self, split: str = "test") -> Path:
        """Return the bundled synthetic sample of ``split`` ("test" or "train")."""
        from tasks import samples_dir

        matches = sorted(samples_dir().glob(f"{self.name}.{split}.*"))
        if not matches:
            raise UserError(f"task '{self.name}' has no bundled {split} sample in {samples_dir()}")
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
