"""One generic registry for tasks, systems, metric profiles and training recipes.

Entries are registered lazily as ``"module:attr"`` strings so ``dialbench list`` never imports torch;
an object is imported only when asked for. Entry points of the registry's group (installed plug-in
packages) are read on first use, after the built-ins, so a plug-in can add names but never silently
replace a built-in. Registering a name twice is an error; an unknown name raises a UserError that
suggests close matches and lists every valid choice.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from harness.errors import UserError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> lazily imported object, extended by the entry points of ``entry_point_group``."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._targets: dict[str, str | T] = {}
        self._origins: dict[str, str] = {}
        self._entry_points_read = entry_point_group is None

    def add_lazy(self, name: str, target: str, origin: str = "dialbench") -> None:
        """Register ``name`` as ``"package.module:Attr"``, imported on first use."""
        if name in self._targets:
            raise ValueError(f"{self.kind} '{name}' is registered twice ({self._origins.get(name)} and {origin})")
        self._targets[name] = target
        self._origins[name] = origin

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form: ``@SYSTEMS.register("retrieval")``; a lazy entry of the same name is replaced."""

        def wrap(obj: T) -> T:
            current = self._targets.get(name)
            if current is not None and not isinstance(current, str) and current is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._targets[name] = obj
            self._origins.setdefault(name, getattr(obj, "__module__", "dialbench"))
            return obj

        return wrap

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        for entry in metadata.entry_points(group=str(self.entry_point_group)):
            origin = f"entry point {entry.group}:{entry.name}"
            if entry.dist is not None:
                origin += f" of {entry.dist.name}"
            if entry.name in self._targets:
                raise UserError(f"{origin} registers {self.kind} '{entry.name}', which {self._origins[entry.name]} "
                                "already provides; rename the plug-in")
            self.add_lazy(entry.name, entry.value, origin=origin)

    def get(self, name: str) -> T:
        """Return the object registered as ``name`` (importing it if needed)."""
        self._read_entry_points()
        if name not in self._targets:
            raise unknown_name(self.kind, name, self._targets)
        target = self._targets[name]
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            try:
                target = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as err:
                if self._origins.get(name, "dialbench") == "dialbench":
                    raise
                raise UserError(f"{self.kind} '{name}' from {self._origins[name]}: cannot import "
                                f"'{module_name}:{attr}' ({type(err).__name__}: {err})") from None
            self._targets[name] = target
        return target  # type: ignore[return-value]

    def origin(self, name: str) -> str:
        """Return who provides ``name``: "dialbench" or the entry point and its distribution."""
        self._read_entry_points()
        return self._origins.get(name, "dialbench")

    def names(self) -> list[str]:
        """Return the registered names in registration order (built-ins first)."""
        self._read_entry_points()
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        self._read_entry_points()
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
