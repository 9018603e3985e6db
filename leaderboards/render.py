"""Render run directories as one leaderboard: rows systems, columns metrics, grouped by task.

Markdown and LaTeX give one block per task (a task's metrics differ from another's, so one wide
table would be mostly empty); CSV and JSON give the same rows flat with a ``task`` column. An empty
cell always gets a footnote with the reason the metric has no value. Numbers follow the single rule
of ``leaderboards/numbers.py`` (fixed decimals per column, by the unit shown); layout is tabulate's.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from leaderboards.numbers import format_number, shown_unit
from leaderboards.published import delta_row, load_published
from leaderboards.rows import RunRow, column_units, metric_columns, read_run, task_order

FORMATS = ("md", "csv", "latex", "json", "html")


class _Footnotes:
    """Numbered, de-duplicated reasons for empty cells."""

    def __init__(self) -> None:
        self.reasons: dict[str, int] = {}

    def mark(self, reason: str) -> str:
        number = self.reasons.setdefault(reason, len(self.reasons) + 1)
        return f"[{number}]"

    def lines(self) -> list[str]:
        return [f"[{n}] {reason}" for reason, n in self.reasons.items()]


def _cell(row: RunRow, metric: str, notes: _Footnotes, unit: str) -> str:
    if metric in row.metrics and row.metrics[metric] is not None:
        value = format_number(row.metrics[metric], unit, signed=row.kind == "delta")
        return value + (f" {notes.mark(row.notes[metric])}" if metric in row.notes else "")
    if row.kind != "run" and metric not in row.not_applicable:
        return "–"
    reason = row.not_applicable.get(metric) or f"{metric} not computed for {row.task}"
    # A published or delta row refused as a whole shares one footnote across its cells.
    return notes.mark(reason if row.kind != "run" else f"{metric}: {reason}")


def _label(row: RunRow, notes: _Footnotes) -> str:
    """Return the row label, footnoted with the run's warnings (degenerate outputs)."""
    warnings = row.result.warnings if row.result is not None else []
    return " ".join([row.system, *(notes.mark(f"{row.system}: {w}") for w in warnings)])


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
    rows = collect_rows(run_dirs, raw=raw, published=published, delta_to=delta_to, references=references)
    if fmt == "json":
        return json.dumps([_row_json(row) for row in rows], indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _render_csv(rows)
    if fmt == "html":
        from leaderboards.html import render_html

        return render_html(rows, title="dialbench leaderboard")
    return _render_blocks(rows, fmt)


def collect_rows(run_dirs: Sequence[str | Path], *, raw: bool = False, published: bool = False,
                 delta_to: str | None = None, references: str | Path | None = None) -> list[RunRow]:
    """Return the leaderboard rows of ``run_dirs`` (with published and delta rows when asked), each
    with the unit its numbers are shown in."""
    if not run_dirs:
        raise UserError("no run directories given")
    rows = [row for run_dir in run_dirs for row in read_run(run_dir)]
    if published or delta_to:
        return _with_published(rows, delta_to, references)
    return [_with_units(r) if raw else _in_paper_units(r) for r in rows]


def _with_units(row: RunRow) -> RunRow:
    """Return ``row`` in its stored unit, with that unit recorded per metric (``--raw``)."""
    keys = list(row.metrics) + list(row.not_applicable)
    return replace(row, units={k: _unit(row, k, raw=True) for k in keys})


def _unit(row: RunRow, metric: str, raw: bool = False) -> str:
    result = row.result
    if result is not None and result.unit:
        return shown_unit(row.signature, metric, raw, stored=result.unit, factor=result.table_scale(metric))
    return shown_unit(row.signature, metric, raw)


def _in_paper_units(row: RunRow) -> RunRow:
    def scaled(metric: str, value: float | None) -> float | None:
        return None if value is None or row.result is None else value * row.result.table_scale(metric)

    keys = list(row.metrics) + list(row.not_applicable)
    return replace(row, metrics={k: scaled(k, v) for k, v in row.metrics.items()},
                   intervals={k: [scaled(k, x) for x in v] for k, v in row.intervals.items()},
                   units={k: _unit(row, k) for k in keys})


def _published_row(entry: Any, ours: Sequence[RunRow]) -> RunRow:
    """Return a published row whose cells are kept only where one of our rows is comparable with it."""
    from harness.comparability import Side, check_published, metric_reason

    source = entry.source + (f"; caveat: {entry.caveat}" if entry.caveat else "")
    shown: dict[str, float] = {}
    hidden: dict[str, str] = {}
    for metric, value in entry.metrics.items():
        if entry.human_judged:  # shown for reference, never compared (no delta is ever made from it)
            shown[metric] = value
            continue
        reasons = []
        for row in (r for r in ours if r.result is not None):
            verdict = check_published(Side.from_result(row.result, row.system), Side.from_published(entry))
            specific = metric_reason(metric, row.signature, entry.recipe)
            reasons.append(f"published numbers {verdict.explain()}" if verdict.reasons else
                           (f"published {metric} {specific}" if specific else None))
        if reasons and all(reasons):
            hidden[metric] = str(reasons[0])
        else:
            shown[metric] = value
    return RunRow(task=entry.task, system=entry.label, run_dir=entry.source, metrics=shown, not_applicable=hidden,
                  signature=f"profile:{entry.profile}|unit:{entry.unit}|source:{source}", kind="published",
                  units={k: "ppl" if k == "ppl" else entry.unit for k in entry.metrics},
                  provenance={"source": entry.source, "caveat": entry.caveat, "profile": entry.profile})


def _with_published(rows: Sequence[RunRow], delta_to: str | None, references: str | Path | None) -> list[RunRow]:
    entries = load_published(references)
    if delta_to and not any(e.system == delta_to for e in entries):
        raise UserError(f"unknown published system '{delta_to}'; valid choices: "
                        + ", ".join(sorted({e.system for e in entries})))
    out: list[RunRow] = []
    tasks = list(dict.fromkeys(r.task for r in rows))
    for task in tasks:
        ours = [_in_paper_units(r) for r in rows if r.task == task]
        for row in ours:
            out.append(row)
            target = next((e for e in entries if e.task == task and e.system == delta_to), None)
            if target is None or row.result is None:
                continue
            in_units = replace(row.result, metrics=row.metrics)
            deltas, reasons, notes = delta_row(in_units, target, row.system)
            out.append(RunRow(task=task, system=f"Δ {row.system} − {target.system}", run_dir=row.run_dir,
                              metrics=deltas, not_applicable=reasons, notes=notes, kind="delta",
                              units=dict(row.units)))
        out += [_published_row(entry, ours) for entry in entries if entry.task == task]
    return out


def _row_json(row: RunRow) -> dict[str, Any]:
    out = {k: v for k, v in row.__dict__.items() if k != "result"}
    if row.result is not None:
        out.update(profile=row.result.profile, unit=row.result.unit, warnings=list(row.result.warnings))
    return out


def _render_csv(rows: Sequence[RunRow]) -> str:
    columns = metric_columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "system", *columns, "n_examples", "run_dir"])
    for task in task_order(rows):
        task_rows = [r for r in rows if r.task == task]
        units = column_units(task_rows, columns)
        for row in task_rows:
            cells = [format_number(row.metrics.get(c), units[c], signed=row.kind == "delta") for c in columns]
            writer.writerow([task, row.system, *cells, row.n_examples, row.run_dir])
    return buffer.getvalue()


def _render_blocks(rows: Sequence[RunRow], fmt: str) -> str:
    from tabulate import tabulate

    notes = _Footnotes()
    blocks = []
    for task in task_order(rows):
        task_rows = [r for r in rows if r.task == task]
        columns = metric_columns(task_rows)
        units = column_units(task_rows, columns)
        body = [[_label(r, notes), *(_cell(r, c, notes, units[c]) for c in columns), r.n_examples] for r in task_rows]
        headers = ["system", *columns, "n"]
        signatures = sorted({r.signature for r in task_rows if r.signature})
        models = [f"{r.system}: {r.model}" for r in task_rows if r.model]
        align = ["left", *(["right"] * (len(headers) - 1))]  # numbers right-aligned, as in the papers' tables
        if fmt == "md":
            block = [f"### {task}", "", tabulate(body, headers=headers, tablefmt="github", disable_numparse=True,
                                                 colalign=align)]
            block += ["", *(f"<sub>model: {m}</sub>" for m in models), *(f"<sub>signature: `{s}`</sub>" for s in signatures)]
        else:
            block = [f"% {task}" + "".join(f"\n% model: {m}" for m in models) + "".join(f"\n% signature: {s}" for s in signatures),
                     tabulate(body, headers=headers, tablefmt="latex_booktabs", disable_numparse=True, colalign=align)]
        blocks.append("\n".join(block))
    footer = notes.lines()
    if footer:
        prefix = "" if fmt == "md" else "% "
        blocks.append("\n".join(prefix + line + ("  " if fmt == "md" else "") for line in footer))
    return "\n\n".join(blocks) + "\n"
