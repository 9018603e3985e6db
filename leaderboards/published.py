"""Published reference numbers, so a leaderboard can show ours beside the papers' with the delta.

Each entry records its source, the metric profile (recipe) its numbers correspond to and their unit.
A delta is shown only where ``harness.comparability`` finds the run comparable (same profile,
protocol, options and split, no limit): numbers from different recipes differ by several points
(see ../shared/docs/metrics.md) and must not be subtracted silently.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness.errors import UserError

DEFAULT_REFERENCES = Path(__file__).resolve().parent / "references" / "published.json"


@dataclass(frozen=True)
class PublishedEntry:
    """One published row: a system's numbers on a task, with provenance."""

    task: str
    system: str
    source: str
    profile: str
    unit: str
    metrics: Mapping[str, float]
    recipe: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Per-metric recipe details: ``note`` and ``signature_contains`` (what our signature must say)."""
    caveat: str = ""
    protocol: str = "default"
    """The task protocol (example rule) the published numbers correspond to."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Task options the published numbers need (empty: the task's defaults)."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """The published test split: ``split`` (its name) and the counts that identify it (``dialogues``,
    ``turns``, ``examples``); without counts no delta is printed, since the same data cannot be confirmed."""
    human_judged: bool = False
    """Numbers from human raters (COMEDY, MemoryBank): shown beside ours, never subtracted from them."""

    @property
    def label(self) -> str:
        return f"{self.system} [published, human-judged]" if self.human_judged else f"{self.system} [published]"


def load_published(path: str | Path | None = None) -> list[PublishedEntry]:
    """Return the automatic-metric entries of a references file (default: the bundled one)."""
    path = Path(path) if path else DEFAULT_REFERENCES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [PublishedEntry(**{k: v for k, v in entry.items()}) for entry in data["entries"]]
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: entries: malformed reference file ({err})") from None


def delta_row(row_result: Any, entry: PublishedEntry, label: str = "ours") -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """Return (``ours - published`` per comparable metric, {metric: why not}, {metric: size note}).

    ``row_result`` is our ``harness.rundir.TaskResult`` in the published entry's unit. Every check of
    ``harness.comparability`` applies: a delta that fails one is not computed, and the reason is kept.
    """
    from harness.comparability import Side, check_published, metric_reason, size_dependent_keys, size_note

    verdict = check_published(Side.from_result(row_result, label), Side.from_published(entry))
    sized = size_dependent_keys(row_result.profile)
    deltas: dict[str, float] = {}
    reasons: dict[str, str] = {}
    notes: dict[str, str] = {}
    for metric, published in entry.metrics.items():
        ours = row_result.metrics.get(metric)
        if ours is None:
            continue
        if entry.human_judged:
            reasons[metric] = "not comparable: published numbers are human judgements, ours automatic"
            continue
        specific = metric_reason(metric, row_result.signature, entry.recipe)
        reason = verdict.explain() or (f"{metric}: {specific}" if specific else None)
        if reason:
            reasons[metric] = reason
            continue
        deltas[metric] = ours - published
        if metric in sized:
            notes[metric] = size_note(metric, row_result.n_examples, Side.from_published(entry).n_examples,
                                      "ours", "published")
    return deltas, reasons, notes
