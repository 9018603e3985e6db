"""Metric base classes: every metric turns each example into a row of *sufficient statistics*.

The corpus value is ``finalize(sum of rows)`` (sacreBLEU's design): BLEU sums n-gram matches and
lengths, perplexity sums NLL and token counts, a confusion matrix is a sum of one-hot cells, and a
sentence-averaged metric (ROUGE-L, CIDEr, F1) sums ``(value, 1)``. Because a resample of examples is
just a different weighting of the same rows, bootstrap intervals and paired comparisons recompute
every corpus metric exactly (``totals = weights @ stats``) without scoring anything again, and the
value cannot depend on how examples were batched.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
from scipy import sparse

from harness.metrics.text import Tokenizer
from harness.records import Example, Response



@dataclass
class Batch:
    """What the metrics score: hypotheses (already post-processed by the profile) and their references.

    ``references[i]`` are the references of hypothesis ``i``. ``examples``/``responses`` are present
    when scoring a run (label, memory and perplexity metrics need them) and ``None`` for plain texts.
    """

    hypotheses: list[str]
    references: list[list[str]]
    language: str = "en"
    examples: Sequence[Example] | None = None
    responses: Sequence[Response] | None = None
    _tokens: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.hypotheses)

    def tokens(self, tokenizer: Tokenizer, empty: str | None = None) -> tuple[list[list[str]], list[list[list[str]]]]:
        """Return (hypothesis tokens, reference tokens) for ``tokenizer``, computed once per batch.

        ``empty`` replaces an empty hypothesis (nlg-eval derivatives use ``&`` so COCO scorers work).
        """
        tok = tokenizer.resolve(self.language)
        key = (tok, empty)
        if key not in self._tokens:
            hyps = [tok(h) for h in self.hypotheses]
            if empty is not None:
                hyps = [h if h else [empty] for h in hyps]
            refs = [[tok(r) for r in rs] for rs in self.references]
            self._tokens[key] = (hyps, refs)
        return self._tokens[key]


class Metric(ABC):
    """One metric (possibly several reported keys, e.g. Bleu_1..Bleu_4) as sufficient statistics.

    Subclasses define ``keys``, :meth:`statistics`, :meth:`finalize` and :meth:`describe`. Library
    distributions whose versions move the number are listed in ``libraries`` and enter the signature.
    """

    libraries: ClassVar[tuple[str, ...]] = ()
    keys: tuple[str, ...] = ()
    needs_references: ClassVar[bool] = True
    value_range: tuple[float, float] | None = None
    """Bounds of the metric's values, where they are known (checked by the interval tests)."""
    interval_unavailable: ClassVar[str | None] = None
    """Why no bootstrap interval is valid for this metric (None: the percentile bootstrap is)."""
    size_dependent: ClassVar[bool] = False
    """True when the value depends on corpus size (corpus Distinct-n): deltas must name the sizes."""
    starts_in_background: ClassVar[bool] = False
    """True when :meth:`prepare`/:meth:`begin` start slow work (a JVM): such metrics are collected last."""
    languages: ClassVar[tuple[str, ...]] = ("en", "zh")

    def relevant(self, batch: Batch) -> bool:
        """Return False when the data has nothing this metric measures (strategy accuracy on a task
        without labels): the metric is then left out of the report instead of footnoted."""
        return True

    def not_applicable(self, batch: Batch) -> str | None:
        """Return why this metric has no value on ``batch`` (one line), or None when it applies."""
        if batch.language not in self.languages:
            return f"not available for language '{batch.language}'"
        if self.needs_references:
            missing = sum(1 for refs in batch.references if not any(r.strip() for r in refs))
            if missing:
                return f"{missing} of {len(batch)} examples have no reference text"
        return None

    def prepare(self) -> None:
        """Start slow resources (a JVM, a model) early so they load while other metrics compute."""

    def begin(self, batch: Batch) -> None:
        """Start computing ``batch`` in the background (the METEOR jar scores while Python computes
        the other metrics); :meth:`statistics` then collects the result. Default: nothing."""

    def close(self) -> None:
        """Release resources (subprocesses, models)."""

    @abstractmethod
    def statistics(self, batch: Batch) -> Any:
        """Return an (N, k) matrix (numpy or scipy sparse) of per-example sufficient statistics."""

    @abstractmethod
    def finalize(self, totals: np.ndarray) -> dict[str, float]:
        """Return ``{key: value}`` from statistics summed over a set of examples (a 1-D array)."""

    def corpus(self, stats: Any) -> dict[str, float]:
        """Return the corpus values from per-example statistics: ``finalize`` of their sum, except for
        aggregates that are no function of the sum (ROUGE's bootstrap median, SPT's script)."""
        totals = np.asarray(stats.sum(axis=0)).ravel() if sparse.issparse(stats) else np.asarray(stats).sum(axis=0)
        return self.finalize(totals)

    def finalize_many(self, totals: np.ndarray) -> dict[str, np.ndarray]:
        """Return ``{key: values}`` for each row of an (R, k) array of summed statistics."""
        rows = [self.finalize(row) for row in totals]
        return {key: np.array([r[key] for r in rows], dtype=float) for key in self.keys}

    def per_example(self, stats: Any) -> list[dict[str, float]]:
        """Return the sentence-level values of each example (finalize on its own row)."""
        dense = stats.toarray() if sparse.issparse(stats) else np.asarray(stats)
        return [self.finalize(row) for row in dense]

    @abstractmethod
    def describe(self, language: str = "en") -> str:
        """Return this metric's signature fragment: implementation and every setting that moves it."""


class MeanMetric(Metric):
    """A metric whose corpus value is the (weighted) mean of per-example values, times ``scale``.

    Statistics are ``[value_1 * w, ..., value_k * w, w]``; an example with weight 0 does not count
    (e.g. a memory question without gold evidence).
    """

    scale: float = 1.0

    @abstractmethod
    def values(self, batch: Batch) -> tuple[np.ndarray, np.ndarray | None]:
        """Return an (N, len(keys)) array of per-example values and optional (N,) weights."""

    def statistics(self, batch: Batch) -> np.ndarray:
        vals, weights = self.values(batch)
        vals = np.asarray(vals, dtype=float).reshape(len(batch), len(self.keys))
        w = np.ones(len(batch)) if weights is None else np.asarray(weights, dtype=float)
        return np.column_stack([vals * w[:, None], w])

    def finalize(self, totals: np.ndarray) -> dict[str, float]:
        weight = totals[-1]
        return {k: (float(totals[i] / weight) * self.scale if weight else float("nan")) for i, k in enumerate(self.keys)}

    def finalize_many(self, totals: np.ndarray) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = totals[:, :-1] / totals[:, -1:] * self.scale
        return {k: means[:, i] for i, k in enumerate(self.keys)}

    def per_example(self, stats: Any) -> list[dict[str, float]]:
        rows = np.asarray(stats)
        out = []
        for row in rows:
            out.append({k: float(row[i] / row[-1]) * self.scale for i, k in enumerate(self.keys)} if row[-1] else {})
        return out


class CocoInput:
    """Settings of scorers fed the pycocoevalcap way: space-joined tokens of one tokenizer, and an
    empty hypothesis replaced by ``empty`` (nlg-eval derivatives use ``&``)."""

    def __init__(self, tokenizer: Tokenizer, empty: str | None, keys: tuple[str, ...], scale: float) -> None:
        self.tokenizer = tokenizer
        self.empty = empty
        self.keys = keys
        self.scale = scale

    def joined(self, batch: Batch) -> tuple[list[str], list[list[str]]]:
        """Return (hypotheses, references) as space-joined token strings."""
        hyps, refs = batch.tokens(self.tokenizer, self.empty)
        return [" ".join(h) for h in hyps], [[" ".join(r) for r in rs] for rs in refs]

    def input_signature(self, language: str) -> str:
        """Return the ``tok:...-empty:...`` signature fragment."""
        return f"tok:{self.tokenizer.resolve(language).describe()}-empty:{self.empty or 'keep'}"
