"""May these two numbers be set side by side? One check for every place that does it.

``dialbench compare`` (two runs), ``table --published``/``--delta-to`` (a run and a published row)
and ``reproduce``/``regress`` all ask the same question, so the answer lives here:

- :func:`check_runs` (run vs run) and :func:`check_published` (run vs published entry) return a
  :class:`Verdict`: ``reasons`` that forbid the delta (different profile or recipe, protocol, task
  options, data, ``--limit``), and ``notes`` that do not (facts an older run directory lacks);
- :func:`metric_reason` adds the per-metric conditions (a published recipe detail such as the
  BERTScore model; a perplexity under another tokenizer);
- :func:`size_note` names the corpus sizes behind a corpus-size-dependent metric (Distinct-n).

Callers print a delta only when ``verdict.comparable`` and :func:`metric_reason` is None, and print
the reason otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from harness.rundir import TaskResult


@dataclass(frozen=True)
class Side:
    """What is known about where one number came from."""

    label: str
    profile: str | None = None
    signature: str | None = None
    protocol: str | None = None
    options: Mapping[str, Any] | None = None
    default_options: bool | None = None
    data_sha256: str | None = None
    bundled_sample: bool | None = None
    limit: int | None = None
    n_examples: int | None = None
    data_counts: Mapping[str, int] = field(default_factory=dict)
    """Counts of the whole data file (``dialogues``, ``turns``) and ``examples`` built from it."""
    split: str | None = None

    @classmethod
    def from_result(cls, result: TaskResult, label: str) -> "Side":
        """Return the side of one task of a run directory."""
        counts = dict(result.data_counts or {})
        if result.limit is None and result.n_examples is not None:
            counts.setdefault("examples", result.n_examples)
        return cls(label=label, profile=result.profile, signature=result.signature, protocol=result.protocol,
                   options=result.options if result.protocol is not None else None,
                   default_options=result.default_options, data_sha256=result.data_sha256,
                   bundled_sample=result.bundled_sample, limit=result.limit, n_examples=result.n_examples,
                   data_counts=counts)

    @classmethod
    def from_published(cls, entry: Any) -> "Side":
        """Return the side of a published entry (``leaderboards.published.PublishedEntry``)."""
        data = dict(getattr(entry, "data", {}) or {})
        counts = {k: int(v) for k, v in data.items() if k in ("dialogues", "turns", "examples")}
        return cls(label=f"{entry.system} [published]", profile=entry.profile, protocol=getattr(entry, "protocol", "default"),
                   options=dict(getattr(entry, "options", {}) or {}), default_options=not getattr(entry, "options", None),
                   data_counts=counts, n_examples=counts.get("examples"), split=data.get("split"))


@dataclass
class Verdict:
    """The outcome of a check: ``reasons`` forbid the comparison, ``notes`` qualify it."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        return not self.reasons

    def explain(self) -> str:
        """Return the reasons as one line (empty when comparable)."""
        return "not comparable: " + "; ".join(self.reasons) if self.reasons else ""


def _strip_versions(signature: str | None) -> str:
    return "|".join(f for f in (signature or "").split("|") if not f.startswith("version:"))


def _protocol_and_options(a: Side, b: Side, verdict: Verdict) -> None:
    if a.protocol is None or b.protocol is None:
        verdict.notes.append("task protocol and options not recorded by an older run; not checked")
        return
    if a.protocol != b.protocol:
        verdict.reasons.append(f"task protocol differs ({a.label}: {a.protocol}, {b.label}: {b.protocol})")
    if a.options is not None and b.options is not None and dict(a.options) != dict(b.options):
        changed = sorted(k for k in set(a.options) | set(b.options) if a.options.get(k) != b.options.get(k))
        verdict.reasons.append(f"task options differ ({', '.join(changed)})")


def check_runs(a: Side, b: Side) -> Verdict:
    """Return whether two runs' numbers on one task may be subtracted (``compare``, ``regress``)."""
    verdict = Verdict()
    if a.profile and b.profile and a.profile != b.profile:
        verdict.reasons.append(f"metric profile differs ({a.label}: {a.profile}, {b.label}: {b.profile})")
    elif a.signature and b.signature and _strip_versions(a.signature) != _strip_versions(b.signature):
        verdict.reasons.append("metric signatures differ (same profile, other settings)")
    elif a.signature and b.signature and a.signature != b.signature:
        verdict.notes.append("library versions in the signatures differ")
    _protocol_and_options(a, b, verdict)
    if a.data_sha256 and b.data_sha256:
        if a.data_sha256 != b.data_sha256:
            verdict.reasons.append(f"test data differ (sha256 {a.data_sha256[:12]} vs {b.data_sha256[:12]})")
    else:
        verdict.notes.append("data hash not recorded by an older run; same data not checked")
    if a.limit != b.limit:
        verdict.reasons.append(f"--limit differs ({a.label}: {a.limit}, {b.label}: {b.limit})")
    elif a.limit is not None:
        verdict.notes.append(f"both runs scored only the first {a.limit} examples (--limit)")
    return verdict


def check_published(ours: Side, published: Side) -> Verdict:
    """Return whether our number may be set beside a published one (``--published``, ``--delta-to``,
    ``reproduce``): same profile, protocol, options and data (the published split's counts), no limit."""
    verdict = Verdict()
    if ours.profile != published.profile:
        verdict.reasons.append(f"ours used profile '{ours.profile}', published used '{published.profile}'")
    if ours.protocol is None:
        verdict.reasons.append("our run does not record its task protocol (re-run it with this version)")
    else:
        if ours.protocol != (published.protocol or "default"):
            verdict.reasons.append(f"ours used protocol '{ours.protocol}', published used '{published.protocol}'")
        if published.options:
            if any((ours.options or {}).get(k) != v for k, v in published.options.items()):
                verdict.reasons.append(f"published used task options {dict(published.options)}")
        elif ours.default_options is False:
            verdict.reasons.append("our run changed task options from their defaults; published used the defaults")
    if ours.bundled_sample:
        verdict.reasons.append("ours is the bundled synthetic sample, not the published test data")
    if ours.limit is not None:
        verdict.reasons.append(f"ours scored only the first {ours.limit} examples (--limit)")
    split = published.split or "the published split"
    if not published.data_counts:
        verdict.reasons.append(f"{split}: its size is not recorded, so the same data cannot be confirmed")
    for key, expected in published.data_counts.items():
        found = ours.data_counts.get(key)
        if found is None:
            verdict.reasons.append(f"our run does not record its {key} count ({split} has {expected})")
        elif found != expected:
            verdict.reasons.append(f"{split} has {expected} {key}, ours {found}")
    return verdict


def metric_reason(metric: str, signature: str, recipe: Mapping[str, Mapping[str, str]]) -> str | None:
    """Return why one metric is not comparable although the profiles match (a published recipe
    detail our signature lacks, e.g. the BERTScore model or the perplexity tokenizer), or None."""
    detail = recipe.get(metric, {})
    needed = detail.get("signature_contains")
    if needed and needed not in (signature or ""):
        return f"not comparable: published used {detail.get('note', needed)}"
    return None


def size_note(metric: str, size_a: int | None, size_b: int | None, label_a: str = "A", label_b: str = "B") -> str:
    """Return the note a corpus-size-dependent metric's delta carries: the two corpus sizes."""
    def size(n: int | None) -> str:
        return "an unrecorded number of" if n is None else str(n)

    return (f"{metric} depends on corpus size: {label_a} over {size(size_a)} examples, "
            f"{label_b} over {size(size_b)} examples")


def size_dependent_keys(profile: str | None) -> set[str]:
    """Return the keys of ``profile`` whose value depends on corpus size (empty when unknown)."""
    if not profile:
        return set()
    from harness.plugins import PROFILES

    if profile not in PROFILES:
        return set()
    return {key for metric in PROFILES.get(profile).metrics if metric.size_dependent for key in metric.keys}
