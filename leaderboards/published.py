"""Published reference numbers, so a leaderboard can show ours beside the papers' with the delta.

Each entry records its source, the metric profile (recipe) its numbers correspond to and their unit.
A delta is shown only where the run used the same profile: numbers from different recipes differ by
several points (see ../shared/docs/metrics.md) and must not be subtracted silently.
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


def delta_row(metrics: Mapping[str, Any], signature: str, entry: PublishedEntry) -> dict[str, float | str]:
    """Return ``ours - published`` per shared metric, or a reason string where they are not comparable."""
    from harness.metrics.signature import parse

    profile = parse(signature).get("profile")
    deltas: dict[str, float | str] = {}
    for metric, published in entry.metrics.items():
        ours = metrics.get(metric)
        if ours is None:
            continue
        recipe = entry.recipe.get(metric, {})
        if entry.human_judged:
            deltas[metric] = "not comparable: published numbers are human judgements, ours automatic"
        elif profile != entry.profile:
            deltas[metric] = f"not comparable: ours used profile '{profile}', published used '{entry.profile}'"
        elif recipe.get("signature_contains") and recipe["signature_contains"] not in signature:
            deltas[metric] = f"not comparable: published used {recipe.get('note', recipe['signature_contains'])}"
        else:
            deltas[metric] = ours - published
    return deltas
