"""The one number-formatting rule of every leaderboard format (md, latex, csv, html, reproduce).

Rule: a column shows a fixed number of decimals chosen by the *unit it is shown in*, never by the
size of the value, so a column never mixes ``0.0000`` and ``7.30``:

- ``percent`` (scores x100, as most papers print them): 2 decimals;
- ``ppl`` (perplexity, unbounded): 2 decimals;
- ``fraction`` (0-1 scores: the memorybank profile, and any profile with ``--raw``): 4 decimals.

Deltas and interval bounds use their column's decimals; a positive delta gets a ``+``. JSON output
keeps full-precision floats and states each column's unit instead.
"""
from __future__ import annotations

import math

DECIMALS = {"percent": 2, "ppl": 2, "fraction": 4}


def shown_unit(signature: str, metric: str, raw: bool = False, *, stored: str | None = None,
               factor: float | None = None) -> str:
    """Return the unit ``metric`` is shown in (see the module rule): from the run's stored unit and
    table factor when known (results.json records both), else read from its signature."""
    if metric == "ppl":
        return "ppl"
    if stored is None or factor is None:
        from harness.metrics import table_scale
        from harness.metrics.signature import parse

        stored = stored or parse(signature).get("unit", "fraction")
        factor = table_scale(signature, metric) if factor is None else factor
    if raw:
        return "percent" if stored == "percent" else "fraction"
    return "percent" if stored == "percent" or factor >= 100 else "fraction"


def format_number(value: float | None, unit: str, *, signed: bool = False) -> str:
    """Return ``value`` with its unit's decimals ('' for None, 'nan' for NaN)."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    text = f"{value:.{DECIMALS.get(unit, 2)}f}"
    return f"+{text}" if signed and value > 0 else text
