"""The system plug-in API: something that can (optionally) be trained and answers batches of examples.

Systems own their memory and model, never the data: the runner hands them examples built by a task.
``fit`` is for cheap in-process training on the task's training examples (the retrieval baseline
indexes them); heavy training goes through ``training/`` and comes back as a checkpoint directory
that the system loads via its ``model`` option. Systems are registered lazily in
``baselines/__init__.py`` (``SYSTEMS``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

from harness.errors import UserError
from harness.records import Example, Response
from harness.task import Task, truth


class System(ABC):
    """Base class of every system."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    uses_training_data: ClassVar[bool] = False
    option_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def flag(cls, options: dict[str, Any], key: str, default: bool) -> bool:
        """Return a true/false option given as a bool or as text (``--set`` values arrive as text);
        anything but true/false/1/0/yes/no is a UserError naming the system and the option."""
        value = options.get(key, default)
        flag = truth(value)
        if flag is None:
            raise UserError(f"system '{getattr(cls, 'name', cls.__name__)}' option {key}: expected true or false, "
                            f"got '{value}'")
        return flag

    @classmethod
    def number(cls, options: dict[str, Any], key: str, default: Any, cast: type = int,
               minimum: float | None = None) -> Any:
        """Return a numeric option given as a number or as text; one that does not parse or is below
        ``minimum`` is a UserError naming the system and the option."""
        value = options.get(key, default)
        system = getattr(cls, "name", cls.__name__)
        try:
            number = cast(value) if isinstance(value, (int, float)) else cast(str(value).strip())
        except (TypeError, ValueError):
            kind = "an integer" if cast is int else "a number"
            raise UserError(f"system '{system}' option {key}: expected {kind}, got '{value}'") from None
        if minimum is not None and number < minimum:
            raise UserError(f"system '{system}' option {key}: must be at least {minimum}, got {number}")
        return number

    def __init__(self, task: Task, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            valid = ", ".join(self.option_names) or "none"
            raise UserError(f"system '{self.name}' has no option(s) {', '.join(unknown)}; valid: {valid}")
        self.task = task
        self.options = options

    def fit(self, train_examples: Sequence[Example]) -> None:
        """Prepare from training examples; the default system needs none."""

    @abstractmethod
    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return one Response per example, in the same order."""

    def info(self) -> dict[str, Any]:
        """Return everything that identifies this system's outputs (recorded in config.json)."""
        return {"name": self.name, "options": {k: str(v) for k, v in self.options.items()}}

    def close(self) -> None:
        """Release resources (model memory, subprocesses)."""
