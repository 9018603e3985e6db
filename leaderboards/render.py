"""Render run directories as one leaderboard: rows systems, columns metrics, grouped by task.

Markdown and LaTeX give one block per task (a task's metrics differ from another's, so one wide
table would be mostly empty); CSV and JSON give the same rows flat with a ``task`` column. An empty
cell always gets a footnote with the reason the metric has no value. Formatting is tabulate's.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from leaderboards.published import delta_row, load_published

FORMATS = ("md", "csv", "latex", "json")


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


def system_label(results: dict[str, Any], config: dict[str, Any]) -> str:
    """Return a row label: the system name plus the model it ran, when it ran one."""
    name = results.get("system") or config.get("system", {}).get("name", "?")
    model = config.get("system", {}).get("options", {}).get("model")
    return f"{name} ({model})" if model else name


def read_run(run_dir: str | Path) -> list[RunRow]:
    """Return the rows of one run directory; a missing or malformed results.json is a UserError."""
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.exists():
        raise UserError(f"{results_path}: file not found (is {run_dir} a dialbench run directory?)")
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
        config_path = run_dir / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    except ValueError as err:
        raise UserError(f"{results_path}: not valid JSON ({err})") from None
    if not isinstance(results.get("results"), dict):
        raise UserError(f"{results_path}: results: missing object keyed by task id")
    label = system_label(results, config)
    rows = []
    for task, metrics in results["results"].items():
        rows.append(RunRow(
            task=task, system=label, run_dir=str(run_dir), metrics=dict(metrics),
            intervals=results.get("intervals", {}).get(task, {}),
            not_applicable=results.get("not_applicable", {}).get(task, {}),
            signature=results.get("signatures", {}).get(task, ""),
            n_examples=results.get("n_examples", {}).get(task),
        ))
    return rows


def _task_order(rows: Sequence[RunRow]) -> list[str]:
    from harness.plugins import TASKS

    seen = list(dict.fromkeys(r.task for r in rows))
    registered = [t for t in TASKS.names() if t in seen]
    return registered + [t for t in seen if t not in registered]


def _metric_columns(rows: Sequence[RunRow]) -> list[str]:
    """Return the metrics our rows report (published rows only fill those columns)."""
    columns: dict[str, None] = {}
    for row in (r for r in rows if r.kind == "run"):
        columns.update(dict.fromkeys(row.metrics))
        columns.update(dict.fromkeys(row.not_applicable))
    return list(columns)


def _format_value(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"


class _Footnotes:
    """Numbered, de-duplicated reasons for empty cells."""

    def __init__(self) -> None:
        self.reasons: dict[str, int] = {}

    def mark(self, reason: str) -> str:
        number = self.reasons.setdefault(reason, len(self.reasons) + 1)
        return f"[{number}]"

    def lines(self) -> list[str]:
        return [f"[{n}] {reason}" for reason, n in self.reasons.items()]


def _cell(row: RunRow, metric: str, notes: _Footnotes) -> str:
    if metric in row.metrics and row.metrics[metric] is not None:
        value = _format_value(row.metrics[metric])
        return f"+{value}" if row.kind == "delta" and row.metrics[metric] > 0 else value
    if row.kind != "run" and metric not in row.not_applicable:
        return "–"
    reason = row.not_applicable.get(metric) or f"{metric} not computed for {row.task}"
    return notes.mark(f"{metric}: {reason}")


def render_table(run_dirs: Sequence[str | Path], fmt: str = "md", *, raw: bool = False,
                 published: bool = False, delta_to: str | None = None,
                 references: str | Path | None = None) -> str:
    """Return the leaderboard of ``run_dirs`` in ``fmt`` (md, csv, latex or json).

    Values are shown in the units of the papers' tables (e.g. nlg-eval BLEU x100) unless ``raw``,
    which keeps each profile's stored unit; ``published`` adds the published rows of the same tasks;
    ``delta_to`` adds, under each of our rows, ``ours - <that published system>`` wherever both used
    the same metric recipe.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown table format '{fmt}'; valid choices: {', '.join(FORMATS)}")
    if not run_dirs:
        raise UserError("no run directories given")
    rows = [row for run_dir in run_dirs for row in read_run(run_dir)]
    if published or delta_to:
        rows = _with_published(rows, delta_to, references)
    elif not raw:
        rows = [_in_paper_units(r) for r in rows]
    if fmt == "json":
        return json.dumps([row.__dict__ for row in rows], indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _render_csv(rows)
    return _render_blocks(rows, fmt)


def _in_paper_units(row: RunRow) -> RunRow:
    from harness.metrics import table_scale

    def scaled(metric: str, value: float | None) -> float | None:
        return None if value is None else value * table_scale(row.signature, metric)

    return replace(row, metrics={k: scaled(k, v) for k, v in row.metrics.items()},
                   intervals={k: [scaled(k, x) for x in v] for k, v in row.intervals.items()})


def _with_published(rows: Sequence[RunRow], delta_to: str | None, references: str | Path | None) -> list[RunRow]:
    entries = load_published(references)
    if delta_to and not any(e.system == delta_to for e in entries):
        raise UserError(f"unknown published system '{delta_to}'; valid choices: "
                        + ", ".join(sorted({e.system for e in entries})))
    out: list[RunRow] = []
    tasks = list(dict.fromkeys(r.task for r in rows))
    for task in tasks:
        for row in (r for r in rows if r.task == task):
            row = _in_paper_units(row)
            out.append(row)
            target = next((e for e in entries if e.task == task and e.system == delta_to), None)
            if target is None:
                continue
            deltas = delta_row(row.metrics, row.signature, target)
            out.append(RunRow(task=task, system=f"Δ {row.system} − {target.system}", run_dir=row.run_dir,
                              metrics={k: v for k, v in deltas.items() if not isinstance(v, str)},
                              not_applicable={k: v for k, v in deltas.items() if isinstance(v, str)}, kind="delta"))
        for entry in (e for e in entries if e.task == task):
            source = entry.source + (f"; caveat: {entry.caveat}" if entry.caveat else "")
            out.append(RunRow(task=task, system=entry.label, run_dir=entry.source, metrics=dict(entry.metrics),
                              signature=f"profile:{entry.profile}|unit:{'human-rating' if entry.human_judged else 'percent'}"
                                        f"|source:{source}", kind="published"))
    return out


def _render_csv(rows: Sequence[RunRow]) -> str:
    columns = _metric_columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "system", *columns, "n_examples", "run_dir"])
    for task in _task_order(rows):
        for row in (r for r in rows if r.task == task):
            writer.writerow([task, row.system, *(row.metrics.get(c, "") for c in columns), row.n_examples, row.run_dir])
    return buffer.getvalue()


def _render_blocks(rows: Sequence[RunRow], fmt: str) -> str:
    from tabulate import tabulate

    notes = _Footnotes()
    blocks = []
    for task in _task_order(rows):
        task_rows = [r for r in rows if r.task == task]
        columns = _metric_columns(task_rows)
        body = [[r.system, *(_cell(r, c, notes) for c in columns), r.n_examples] for r in task_rows]
        headers = ["system", *columns, "n"]
        signatures = sorted({r.signature for r in task_rows if r.signature})
        if fmt == "md":
            block = [f"### {task}", "", tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)]
            block += ["", *(f"<sub>signature: `{s}`</sub>" for s in signatures)]
        else:
            block = [f"% {task}" + "".join(f"\n% signature: {s}" for s in signatures),
                     tabulate(body, headers=headers, tablefmt="latex_booktabs", disable_numparse=True)]
        blocks.append("\n".join(block))
    footer = notes.lines()
    if footer:
        prefix = "" if fmt == "md" else "% "
        blocks.append("\n".join(prefix + line + ("  " if fmt == "md" else "") for line in footer))
    return "\n\n".join(blocks) + "\n"
