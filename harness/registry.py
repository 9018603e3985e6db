"""One generic registry for tasks, systems and metric profiles.

Entries are registered lazily as ``"module:attr"`` strings so ``dialbench list`` never imports torch;
a class is imported only when asked for. Registering a name twice is an error; an unknown name
raises a UserError that suggests close matches and lists every valid choice.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

from harness.errors import unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> lazily imported object."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str | T] = {}

    def add_lazy(self, name: str, target: str) -> None:
        """Register ``name`` as ``"package.module:Attr"``, imported on first use."""
        if name in self._targets:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._targets[name] = target

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form: ``@SYSTEMS.register("retrieval")``; a lazy entry of the same name is replaced."""

        def wrap(obj: T) -> T:
            current = self._targets.get(name)
            if current is not None and not isinstance(current, str) and current is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._targets[name] = obj
            return obj

        return wrap

    def get(self, name: str) -> T:
        """Return the object registered as ``name`` (importing it if needed)."""
        if name not in self._targets:
            raise unknown_name(self.kind, name, self._targets)
        target = self._targets[name]
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module_name), attr)
            self._targets[name] = target
        return target  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Return the registered names in registration order."""
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)
