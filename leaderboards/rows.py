"""The rows of a leaderboard, read from run directories: what every renderer (text, HTML) draws."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from harness.rundir import TaskResult, read_config, read_results


@dataclass
class RunRow:
    """One system's scores on one task, read from a run directory."""

    task: str
    system: str
    run_dir: str
    metrics: dict[str, float]
    intervals: dict[str, list[float]] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    signature: str = ""
    n_examples: int | None = None
    kind: str = "run"
    """"run" (ours), "published" or "delta"; only our rows footnote their empty cells."""
    model: str | None = None
    """The model the row's system ran, named with its quantisation (for the caption)."""
    units: dict[str, str] = field(default_factory=dict)
    """The unit each metric is shown in (``leaderboards/numbers.py``): percent, fraction or ppl."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where the row comes from: command, seed, data hash, model (ours) or the source (published)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Footnotes attached to a shown value (the corpus sizes behind a Distinct-n delta)."""
    result: TaskResult | None = field(default=None, repr=False)
    """What results.json holds for our rows (profile, unit, data facts), None for the others."""


def read_run(run_dir: str | Path) -> list[RunRow]:
    """Return the rows of one run directory; a missing or malformed results.json is a UserError."""
    results = read_results(run_dir)
    config = read_config(run_dir)
    label = config.label() if config else results.system
    caption = config.model_caption() if config else None
    return [RunRow(task=task, system=label, run_dir=str(run_dir), metrics=dict(r.metrics), intervals=r.intervals,
                   not_applicable=r.not_applicable, signature=r.signature, n_examples=r.n_examples, result=r,
                   model=caption, provenance=_provenance(config, r))
            for task, r in results.tasks.items()]


def _provenance(config: Any, result: TaskResult) -> dict[str, Any]:
    """Return what a reader needs to trace a row: command, seed, data and its hash, options."""
    data = config.data if config else {}
    spec = (config.task_run(result.task).get("spec") or {}) if config else {}
    facts = {"command": " ".join(map(str, data.get("command") or [])), "seed": data.get("seed"),
             "created": data.get("created"), "data": spec.get("data"), "data_sha256": result.data_sha256,
             "limit": result.limit, "protocol": result.protocol, "task_options": result.options,
             "system_options": config.system_options if config else None}
    return {k: v for k, v in facts.items() if v not in (None, "", {})}


def task_order(rows: Sequence[RunRow]) -> list[str]:
    from harness.plugins import TASKS

    seen = list(dict.fromkeys(r.task for r in rows))
    registered = [t for t in TASKS.names() if t in seen]
    return registered + [t for t in seen if t not in registered]


def metric_columns(rows: Sequence[RunRow]) -> list[str]:
    """Return the metrics our rows report (published rows only fill those columns)."""
    columns: dict[str, None] = {}
    for row in (r for r in rows if r.kind == "run"):
        columns.update(dict.fromkeys(row.metrics))
        columns.update(dict.fromkeys(row.not_applicable))
    return list(columns)


def column_units(rows: Sequence[RunRow], columns: Sequence[str]) -> dict[str, str]:
    """Return one unit per column: our rows' unit (they define the table), else any row's."""
    ordered = [r for r in rows if r.kind == "run"] + [r for r in rows if r.kind != "run"]
    return {c: next((r.units[c] for r in ordered if c in r.units), "percent") for c in columns}
