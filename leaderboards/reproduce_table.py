"""The table of ``dialbench reproduce``: per task and metric, our number beside the published one.

A delta is given only where ``harness.comparability`` allows it (same profile and per-metric recipe,
protocol, options, the published split's counts, no ``--limit``; via ``leaderboards.published.delta_row``); a published
number that was judged by humans, or that the paper recipe marks as made by a different recipe, is
shown without a delta and with the reason. Numbers follow ``leaderboards/numbers.py``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

from leaderboards.numbers import format_number
from leaderboards.paper_recipes import Comparison
from leaderboards.published import PublishedEntry, delta_row
from leaderboards.rows import RunRow


@dataclass(frozen=True)
class ComparedMetric:
    """One line of the reproduce table."""

    task: str
    metric: str
    system: str
    published_system: str
    ours: float | None
    published: float | None
    delta: float | None
    match: str
    """``yes`` when the delta is meaningful, else the reason it is not given."""
    unit: str


def compare_rows(ours: Sequence[RunRow], comparison: Comparison, entry: PublishedEntry | None,
                 human: dict[str, float] | None) -> list[ComparedMetric]:
    """Return one line per (our row, compared metric) of one published comparison."""
    out = []
    for row in ours:
        published = dict(entry.metrics) if entry is not None else dict(human or {})
        deltas: dict[str, float] = {}
        reasons: dict[str, str] = {}
        if entry is not None and row.result is not None:
            deltas, reasons, _ = delta_row(replace(row.result, metrics=row.metrics), entry, row.system)
        for metric in comparison.metrics:
            value = row.metrics.get(metric)
            unit = row.units.get(metric, "ppl" if metric == "ppl" else "percent")
            delta: float | None = None
            if comparison.human_judged:
                match = "no: judged by humans, not an automatic metric"
            elif comparison.different_recipe:
                match = f"no: {comparison.different_recipe}"
            elif value is None:
                match = f"no: {row.not_applicable.get(metric, 'not computed')}"
            elif metric in deltas:
                delta, match = float(deltas[metric]), "yes"
            else:
                match = f"no: {reasons.get(metric, 'our run records no task facts').removeprefix('not comparable: ')}"
            out.append(ComparedMetric(row.task, metric, row.system, comparison.published, value,
                                      published.get(metric), delta, match, unit))
    return out


def render_markdown(lines: Sequence[ComparedMetric], notes: dict[str, list[str]]) -> str:
    """Return the reproduce table, one block per task, with the data notes of each task above it."""
    from tabulate import tabulate

    blocks = []
    for task in dict.fromkeys(line.task for line in lines):
        body = []
        for line in (x for x in lines if x.task == task):
            body.append([line.metric, line.system, line.published_system, format_number(line.ours, line.unit),
                         format_number(line.published, line.unit),
                         format_number(line.delta, line.unit, signed=True) if line.delta is not None else "–",
                         line.match])
        table = tabulate(body, headers=["metric", "ours", "published", "ours value", "published value", "Δ",
                                        "recipe match"], tablefmt="github", disable_numparse=True)
        blocks.append("\n".join([f"### {task}", *(f"> {n}" for n in notes.get(task, [])), "", table]))
    return "\n\n".join(blocks) + "\n"


def as_json(lines: Sequence[ComparedMetric]) -> list[dict[str, Any]]:
    return [asdict(line) for line in lines]
