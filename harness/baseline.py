"""Scored runs as ``regress`` sees them: a run directory or a committed baseline file, one shape.

A baseline file (``dialbench regress --write-baseline RUN > baseline.json``) keeps, per task, the
recipe identity (profile, language, signature, data hash, limit), the recorded corpus metrics, and
the per-example rows a metric needs to be recomputed (id, output, references, labels, retrieved ids,
reference NLL, evidence/keywords). Pairing needs per-example values of *corpus* metrics (BLEU,
corpus Distinct, perplexity), which are not per-example means; storing the rows and rescoring them
with the recorded profile gives the exact paired bootstrap that ``dialbench compare`` computes,
and lets ``regress`` notice a scorer that changed while its signature did not.
Rows hold the references of the evaluated data: commit a baseline only for data you may publish.

``load_scored`` is the one adapter over the run-directory layout (``harness/rundir.py``).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.jsonio import read_json
from harness.rundir import SampleRow, read_config, read_results, read_samples

BASELINE_VERSION = 1
ROW_KEYS = ("example_id", "dialogue_id", "output", "references", "label", "predicted_label", "retrieved",
            "ref_nll", "ref_tokens")
META_KEYS = ("evidence", "keywords")
"""The only ``meta`` fields metrics read (memory metrics); others (candidates) are left out."""


@dataclass
class ScoredTask:
    """One task of a scored run: what identifies its recipe and data, its numbers and its rows."""

    task: str
    profile: str
    language: str
    signature: str
    data_sha256: str | None
    limit: int | None
    metrics: dict[str, float | None]
    rows: list[tuple[int, SampleRow]] = field(default_factory=list)
    protocol: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScoredRun:
    """A run directory or baseline file: where it is, its system and its tasks."""

    source: str
    system: str
    tasks: dict[str, ScoredTask]


def load_scored(path: str | Path) -> ScoredRun:
    """Return the scored run at ``path``: a run directory or a baseline file."""
    path = Path(path)
    if path.is_dir():
        return _from_run_dir(path)
    if path.is_file():
        return _from_baseline(path)
    raise UserError(f"{path}: not found (expected a run directory or a baseline file)")


def _from_run_dir(root: Path) -> ScoredRun:
    rows = read_samples(root)
    results = read_results(root)
    tasks = {}
    for task, task_rows in rows.items():
        result = results.tasks.get(task)
        if result is None or not result.profile:
            raise UserError(f"{root / 'results.json'}: task '{task}' has samples but no recorded metric profile")
        tasks[task] = ScoredTask(
            task=task, profile=result.profile, language=result.language or _lang(result.signature),
            signature=result.signature, data_sha256=result.data_sha256, limit=result.limit,
            metrics=dict(result.metrics), rows=task_rows, protocol=result.protocol, options=dict(result.options))
    return ScoredRun(str(root), results.system, tasks)


def _lang(signature: str) -> str:
    from harness.metrics.signature import parse

    return parse(signature).get("lang") or "en"


def _from_baseline(path: Path) -> ScoredRun:
    data = read_json(path)
    if not isinstance(data, dict) or data.get("dialbench_baseline") != BASELINE_VERSION:
        raise UserError(f"{path}: dialbench_baseline: not a dialbench baseline file (version {BASELINE_VERSION})")
    tasks = {}
    for task, entry in (data.get("tasks") or {}).items():
        for key in ("profile", "language", "signature", "metrics", "samples"):
            if key not in entry:
                raise UserError(f"{path}: tasks.{task}.{key}: missing")
        rows = [(i + 1, SampleRow.from_json(path, i + 1, {**row, "task": task})) for i, row in enumerate(entry["samples"])]
        tasks[task] = ScoredTask(task, entry["profile"], entry["language"], entry["signature"],
                                 entry.get("data_sha256"), entry.get("limit"), dict(entry["metrics"]), rows,
                                 entry.get("protocol"), dict(entry.get("options") or {}))
    if not tasks:
        raise UserError(f"{path}: tasks: no task in the baseline file")
    return ScoredRun(str(path), str(data.get("system", "?")), tasks)


def baseline_json(run_dir: str | Path) -> dict[str, Any]:
    """Return the baseline file content of a run directory (see the module docstring)."""
    run = _from_run_dir(Path(run_dir))
    recorded = read_config(run_dir)
    config = recorded.data if recorded else {}
    return {
        "dialbench_baseline": BASELINE_VERSION,
        "about": "written by `dialbench regress --write-baseline`; compare with `dialbench regress BASELINE RUN`",
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_run": str(run_dir), "system": run.system,
        "command": config.get("command"), "seed": config.get("seed"),
        "tasks": {task: {"profile": t.profile, "language": t.language, "signature": t.signature,
                         "data_sha256": t.data_sha256, "limit": t.limit, "protocol": t.protocol,
                         "options": t.options, "n_examples": len(t.rows),
                         "metrics": t.metrics, "samples": [_slim(row) for _, row in t.rows]}
                  for task, t in run.tasks.items()},
    }


def _slim(sample: SampleRow) -> dict[str, Any]:
    row = sample.to_json()
    out = {k: row.get(k) for k in ROW_KEYS if row.get(k) not in (None, [], "") or k in ("output", "references")}
    meta = {k: v for k, v in (row.get("meta") or {}).items() if k in META_KEYS and v}
    if meta:
        out["meta"] = meta
    return out


def dumps(obj: Any) -> str:
    """Return the baseline as stable JSON (one sample per line keeps diffs of a committed file small)."""
    tasks = obj["tasks"]
    head = {k: v for k, v in obj.items() if k != "tasks"}
    parts = []
    for task, entry in tasks.items():
        fields = {k: v for k, v in entry.items() if k != "samples"}
        samples = ",\n".join("      " + json.dumps(s, ensure_ascii=False, sort_keys=True) for s in entry["samples"])
        inner = json.dumps(fields, ensure_ascii=False, sort_keys=True)[1:-1]
        parts.append(f'    {json.dumps(task)}: {{{inner}, "samples": [\n{samples}\n    ]}}')
    head_text = json.dumps(head, ensure_ascii=False, sort_keys=True, indent=2)[:-2]
    return head_text + ',\n  "tasks": {\n' + ",\n".join(parts) + "\n  }\n}\n"
