"""One self-contained HTML leaderboard page (nothing is fetched at view time).

Per task: a sortable table (click a header; a few lines of inline JavaScript, since sorting a table
is not worth a library dependency), the 95% bootstrap interval under each value and on hover, the
signature and provenance of every run, published rows beside ours, and a matplotlib figure of
per-metric bars with interval error bars, inlined as SVG. A ``reproduce`` page adds an
ours-vs-published figure per task. Numbers follow ``leaderboards/numbers.py``.

On load the script marks each table with how many of its rows the browser laid out
(``data-rows-rendered``) and each figure whose SVG has a size (``data-rendered="yes"``), so a
headless browser's DOM dump shows what really rendered (``tests/leaderboards/test_html_browser.py``).
"""
from __future__ import annotations

import html
import io
import math
from typing import Any, Sequence

from leaderboards.numbers import format_number
from leaderboards.rows import RunRow, column_units, metric_columns, task_order

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f2f2f2;cursor:pointer;user-select:none}
td:first-child,th:first-child{text-align:left}
tr.published td{color:#555;font-style:italic}tr.delta td{color:#036}
.ci{display:block;font-size:.7rem;color:#777}
details{margin:.3rem 0 1rem;font-size:.8rem}code{word-break:break-all}
figure{margin:0 0 1.5rem}figure svg{max-width:100%;height:auto}
"""

SCRIPT = """
document.querySelectorAll('table.task-table').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
      rows.sort(function(a, b){
        var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return asc ? cmp : -cmp;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
  var shown = Array.from(table.tBodies[0].rows).filter(function(r){ return r.getBoundingClientRect().height > 0; });
  table.dataset.rowsRendered = String(shown.length);
});
document.querySelectorAll('figure.plot').forEach(function(fig){
  var svg = fig.querySelector('svg'); var box = svg ? svg.getBoundingClientRect() : null;
  fig.dataset.rendered = (box && box.width > 0 && box.height > 0) ? 'yes' : 'no';
});
"""


def render_html(rows: Sequence[RunRow], *, title: str, reproduce: Sequence[Any] | None = None,
                notes: dict[str, list[str]] | None = None) -> str:
    """Return the page for ``rows`` (and, for ``dialbench reproduce``, its compared lines)."""
    sections = []
    for task in task_order(rows):
        task_rows = [r for r in rows if r.task == task]
        columns = metric_columns(task_rows)
        units = column_units(task_rows, columns)
        parts = [f'<section class="task" data-task="{_e(task)}"><h2>{_e(task)}</h2>']
        parts += [f"<p class=note>{_e(n)}</p>" for n in (notes or {}).get(task, [])]
        parts.append(_table(task, task_rows, columns, units))
        parts.append(_provenance(task_rows))
        parts.append(_figure(task, "metrics", _metric_bars(task, task_rows, columns, units)))
        compared = [c for c in reproduce or () if c.task == task]
        if compared:
            parts.append(_figure(task, "ours-vs-published", _ours_vs_published(task, compared)))
        sections.append("\n".join(parts) + "</section>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"
            "<p>Click a column header to sort. Small numbers under a value are its 95% bootstrap interval; "
            "numbers use fixed decimals per column by unit (percent and perplexity 2, fractions 4).</p>"
            + "\n".join(sections) + f"<script>{SCRIPT}</script></body></html>\n")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _table(task: str, rows: Sequence[RunRow], columns: Sequence[str], units: dict[str, str]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in ["system", *columns, "n"])
    body = []
    for row in rows:
        cells = [f'<td data-value="{_e(row.system)}">{_e(row.system)}</td>']
        for column in columns:
            value = row.metrics.get(column)
            if value is None:
                reason = row.not_applicable.get(column, "")
                cells.append(f'<td data-value="" title="{_e(reason)}">{"n/a" if reason else "–"}</td>')
                continue
            text = format_number(value, units[column], signed=row.kind == "delta")
            interval = row.intervals.get(column)
            if interval and len(interval) == 2 and None not in interval:
                low, high = (format_number(x, units[column]) for x in interval)
                cells.append(f'<td data-value="{value!r}" title="95% CI [{low}, {high}]">{text}'
                             f'<span class=ci>[{low}, {high}]</span></td>')
            else:
                cells.append(f'<td data-value="{value!r}">{text}</td>')
        cells.append(f'<td data-value="{row.n_examples or ""}">{row.n_examples or ""}</td>')
        body.append(f'<tr class="{row.kind}">' + "".join(cells) + "</tr>")
    return (f'<table class="task-table" data-task="{_e(task)}" data-rows="{len(rows)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _provenance(rows: Sequence[RunRow]) -> str:
    items = []
    for row in rows:
        if row.kind == "delta":
            continue
        facts = "".join(f"<li>{_e(k)}: <code>{_e(v)}</code></li>" for k, v in row.provenance.items())
        items.append(f"<li><b>{_e(row.system)}</b> ({_e(row.run_dir)})<br>signature: <code>{_e(row.signature)}</code>"
                     f"<ul>{facts}</ul></li>")
    return f"<details><summary>signatures and provenance</summary><ul>{''.join(items)}</ul></details>"


def _figure(task: str, kind: str, svg: str) -> str:
    return f'<figure class="plot" data-task="{_e(task)}" data-kind="{kind}">{svg}</figure>'


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _grid(count: int) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller page, selectable labels
    cols = min(4, max(1, count))
    nrows = math.ceil(count / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.8 * nrows), squeeze=False, layout="constrained")
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _metric_bars(task: str, rows: Sequence[RunRow], columns: Sequence[str], units: dict[str, str]) -> str:
    """Return one bar chart per metric: our systems with interval error bars, published rows hatched."""
    shown = [r for r in rows if r.kind != "delta"]
    columns = [c for c in columns if any(r.metrics.get(c) is not None for r in shown)] or list(columns[:1])
    fig, axes = _grid(len(columns))
    for ax, column in zip(axes, columns):
        plotted = [r for r in shown if r.metrics.get(column) is not None]
        values = [float(r.metrics[column]) for r in plotted]
        errors = [[0.0, 0.0] if len(r.intervals.get(column) or []) != 2 or None in r.intervals[column]
                  else [max(0.0, r.metrics[column] - r.intervals[column][0]), max(0.0, r.intervals[column][1] - r.metrics[column])]
                  for r in plotted]
        bars = ax.bar(range(len(plotted)), values, yerr=[[e[0] for e in errors], [e[1] for e in errors]] if plotted else None,
                      capsize=3, color=["#bbb" if r.kind == "published" else "#4878a8" for r in plotted])
        for bar, row in zip(bars, plotted):
            if row.kind == "published":
                bar.set_hatch("//")
        ax.set_xticks(range(len(plotted)), [r.system[:18] for r in plotted], rotation=40, ha="right", fontsize=7)
        ax.set_title(f"{column} ({units.get(column, '')})", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{task}: per-metric scores (error bars: 95% bootstrap interval; hatched: published)", fontsize=9)
    return _svg(fig)


def _ours_vs_published(task: str, compared: Sequence[Any]) -> str:
    """Return, per compared metric, our value(s) beside the published one (grey when not comparable)."""
    metrics = list(dict.fromkeys(c.metric for c in compared))
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        lines = [c for c in compared if c.metric == metric]
        labels, values, colors = [], [], []
        for c in lines:
            if c.ours is not None and c.system[:18] not in labels:
                labels.append(c.system[:18]); values.append(c.ours); colors.append("#4878a8")
        for c in lines:
            label = c.published_system[:18] + (" *" if c.match != "yes" else "")
            if c.published is not None and label not in labels:
                labels.append(label); values.append(c.published); colors.append("#d08040" if c.match == "yes" else "#bbb")
        ax.bar(range(len(values)), values, color=colors)
        ax.set_xticks(range(len(values)), labels, rotation=40, ha="right", fontsize=7)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{task}: ours (blue) vs published (orange; grey * = recipe differs, no delta)", fontsize=9)
    return _svg(fig)
