"""MAGIC's 8 strategy classes in its own order (class ids 0-7, systems.md section 6.1).

The order differs from MultiESC's ``new_strategy.json``; ids index the strategy banks, the
classifier and the released ``memory_bank.pth`` list, so it must never change.
"""
from __future__ import annotations

from harness.errors import UserError
from tasks.formats.esconv import canonical_strategy

MAGIC_ORDER = (
    "Question", "Restatement or Paraphrasing", "Reflection of feelings", "Self-disclosure",
    "Affirmation and Reassurance", "Providing Suggestions or Information", "Greeting", "Others",
)
N_STRATEGIES = len(MAGIC_ORDER)


def strategy_id(label: str | None, where: str = "strategy") -> int:
    """Return the MAGIC class id of ``label`` (case- and bracket-insensitive); unknown names are a UserError."""
    name = canonical_strategy(label or "", "multiesc")
    if name is None:
        raise UserError(f"{where}: unknown strategy '{label}'; valid: {'; '.join(MAGIC_ORDER)}")
    return MAGIC_ORDER.index(name)


def strategy_name(index: int) -> str:
    """Return the class name of id ``index``."""
    return MAGIC_ORDER[index]
