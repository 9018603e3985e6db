"""A warning for runs whose scored hypotheses are mostly empty or one token.

Such runs still get numbers (an empty hypothesis becomes nlg-eval's ``&``; 31 replies of "." have
Dist-2 of 100), and those numbers look like a weak system rather than a broken one. Tables and
``eval``'s summary print this warning beside them.
"""
from __future__ import annotations

from typing import Sequence

THRESHOLD = 0.2
"""Share of degenerate hypotheses above which a run is flagged."""


def token_count(text: str, language: str) -> int:
    """Return the number of words (characters, for Chinese, which has no spaces) in ``text``."""
    stripped = text.strip()
    if language == "zh":
        return sum(1 for ch in stripped if not ch.isspace())
    return len(stripped.split())


def degenerate_warning(hypotheses: Sequence[str], language: str = "en", threshold: float = THRESHOLD) -> str | None:
    """Return a one-line warning when more than ``threshold`` of ``hypotheses`` are empty or a single
    token (after the profile's processing), else None."""
    if not hypotheses:
        return None
    counts = [token_count(h, language) for h in hypotheses]
    empty = sum(1 for c in counts if c == 0)
    single = sum(1 for c in counts if c == 1)
    if (empty + single) / len(counts) <= threshold:
        return None
    unit = "character" if language == "zh" else "token"
    return (f"degenerate outputs: {empty + single} of {len(counts)} scored hypotheses are empty ({empty}) "
            f"or one {unit} ({single}); the scores describe near-empty text")
