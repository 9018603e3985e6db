"""Paper-faithful metric profiles (issue 3): ``get_profile(name).score(examples, responses, language)``.

Profiles are registered lazily, so ``dialbench list profiles`` and importing this package start no
JVM and load no model; those start on first use.
"""
from __future__ import annotations

from typing import Any

from harness.plugins import PROFILES

def profile_names() -> list[str]:
    """Return the registered profile names."""
    return PROFILES.names()


def get_profile(name: str, **options: Any):
    """Return the profile ``name`` (a UserError listing the choices when unknown), rebuilt with
    ``options`` when given (e.g. ``get_profile("spt", bertscore_model="/path", bertscore_layers=12)``)."""
    return PROFILES.get(name).with_options(**options)


def table_scale(signature: str, metric: str) -> float:
    """Return the factor from a stored value to the unit of the papers' tables, given its signature
    (x100 for nlgeval/parlai/dolphin/basic values, x1 for spt and memorybank, never for ``ppl``)."""
    from harness.metrics.signature import parse

    name = parse(signature).get("profile", "")
    if metric == "ppl" or name not in PROFILES:
        return 1.0
    return float(PROFILES.get(name).table_factor)


def __getattr__(name: str):
    # ScoreReport and Profile live in profiles.py, which imports numpy/scipy: load it only when asked.
    if name in ("ScoreReport", "Profile"):
        from harness.metrics import profiles

        return getattr(profiles, name)
    raise AttributeError(f"module 'harness.metrics' has no attribute {name!r}")


__all__ = ["PROFILES", "get_profile", "profile_names", "table_scale", "ScoreReport", "Profile"]
