"""The published MemoryBank store (``memory_bank_*.json``): read, edit in memory, save atomically.

Unlike ``tasks.formats.memorybank`` (which turns a store into read-only evaluation records), this
keeps the raw JSON so summaries, strengths and forgetting can be written back in the published
layout. Keys are matched trimmed (the published file has " Jason ", " Ivy "), but written back
exactly as read, and the JSON layout (compact or indented, trailing newline) is detected and
reused, so a store loaded and saved without changes is byte-identical. Saving never goes to the
file that was read unless the caller names it: summaries and forgetting write into a copy.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from harness.errors import UserError
from harness.jsonio import write_atomic
from tasks.formats import memorybank as store_format


@dataclass
class StoreLayout:
    """How the file was written, so saving reproduces it."""

    indent: int | None = None
    trailing_newline: bool = False


@dataclass
class MemoryBankStore:
    """A whole store: ``data`` is the raw JSON object (user key -> record), in file order."""

    data: dict[str, Any]
    path: Path | None = None
    layout: StoreLayout = field(default_factory=StoreLayout)

    # --- reading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "MemoryBankStore":
        """Read and validate a store (dates, fields; one ``PATH:LINE: field: problem`` line on error)."""
        path = Path(path)
        store_format.load_store(path)  # the strict reader raises DataError with line and field
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, object_pairs_hook=dict)
        return cls(data, path, detect_layout(text))

    def key(self, user: str) -> str:
        """Return the file's own key for ``user`` (matched with stray spaces trimmed)."""
        wanted = user.strip()
        for key in self.data:
            if key.strip() == wanted:
                return key
        raise UserError(f"{self.path or '<store>'}: no user '{wanted}' in the memory store")

    def user(self, user: str) -> dict[str, Any]:
        """Return the raw record of ``user`` (mutable: edits are saved by ``save``)."""
        return self.data[self.key(user)]

    def users(self) -> list[str]:
        """Return the trimmed user names in file order."""
        return [key.strip() for key in self.data]

    def exchanges(self, user: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Yield ``(date, index, exchange)`` for every exchange of ``user`` in file order."""
        for date, rows in self.user(user).get("history", {}).items():
            for index, row in enumerate(rows):
                yield date, index, row

    # --- writing ---------------------------------------------------------------------------------
    def dumps(self) -> str:
        """Return the store as text in the layout it was read with."""
        text = json.dumps(self.data, ensure_ascii=False, indent=self.layout.indent)
        return text + ("\n" if self.layout.trailing_newline else "")

    def save(self, path: str | Path) -> Path:
        """Write the store atomically to ``path`` and return it."""
        path = Path(path)
        write_atomic(path, self.dumps())
        return path

    def copy(self) -> "MemoryBankStore":
        """Return a deep copy (the input store is never edited in place)."""
        return MemoryBankStore(json.loads(json.dumps(self.data)), self.path, StoreLayout(**vars(self.layout)))


def detect_layout(text: str) -> StoreLayout:
    """Return the indentation and trailing newline of a JSON text written by ``json.dumps``."""
    match = re.search(r"\n( +)\S", text)
    return StoreLayout(indent=len(match.group(1)) if match else None, trailing_newline=text.endswith("\n"))


def memory_id(user: str, date: str, index: int) -> str:
    """Return the released memory id ``{user}_{date}_{i}`` (forget_memory.py)."""
    return f"{user}_{date}_{index}"


def days_between(earlier: str, later: str) -> int:
    """Return whole days from ``earlier`` to ``later`` (both ``YYYY-MM-DD``)."""
    try:
        return (dt.date.fromisoformat(later) - dt.date.fromisoformat(earlier)).days
    except ValueError:
        raise UserError(f"not a YYYY-MM-DD date: '{earlier}' or '{later}'") from None
