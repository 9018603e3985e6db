"""Seeded bootstrap over examples: 95% intervals and paired comparisons, from sufficient statistics.

A resample is a vector of counts (how often each example was drawn); its summed statistics are
``counts @ stats``, and the metric's ``finalize_many`` turns them into values. Nothing is re-scored,
so 1000 resamples of every metric take well under a second, and corpus metrics (BLEU, METEOR,
perplexity, confusion-matrix F1, corpus Distinct) are recomputed exactly for each resample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from scipy import sparse

from harness.metrics.base import Metric

DEFAULT_RESAMPLES = 1000
BLOCK = 100  # resamples summed at once: bounds memory for wide (sparse n-gram) statistics


def resample_counts(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Return an (R, n) array: row r counts how often each of n examples is drawn in resample r."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)


def _blocks(counts: np.ndarray, stats: Any) -> Iterator[np.ndarray]:
    for start in range(0, counts.shape[0], BLOCK):
        block = counts[start:start + BLOCK]
        if sparse.issparse(stats):
            yield np.asarray((stats.T @ block.T).T)
        else:
            yield block @ np.asarray(stats)


def resampled_values(metric: Metric, stats: Any, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Return ``{key: (R,) values}`` of ``metric`` for each resample in ``counts``."""
    parts = [metric.finalize_many(totals) for totals in _blocks(counts, stats)]
    return {key: np.concatenate([p[key] for p in parts]) for key in metric.keys}


def intervals(metric: Metric, stats: Any, counts: np.ndarray, level: float = 0.95,
              observed: dict[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """Return the percentile bootstrap interval of each key of ``metric``.

    For a metric with ``resampling_bias`` (corpus Distinct-n) the percentiles are shifted by the
    bootstrap bias estimate (mean of resamples minus ``observed``), so the interval describes the
    observed value's uncertainty instead of the lower diversity of resamples with duplicates.
    """
    tail = (1 - level) / 2 * 100
    out = {}
    for key, values in resampled_values(metric, stats, counts).items():
        finite = values[np.isfinite(values)]
        if not finite.size:
            out[key] = (float("nan"), float("nan"))
            continue
        shift = float(finite.mean() - observed[key]) if metric.resampling_bias and observed else 0.0
        low, high = float(np.percentile(finite, tail)) - shift, float(np.percentile(finite, 100 - tail)) - shift
        if shift and metric.value_range:
            low, high = max(low, metric.value_range[0]), min(high, metric.value_range[1])
        out[key] = (low, high)
    return out


@dataclass(frozen=True)
class PairedResult:
    """B minus A for one metric: the observed difference, its 95% interval and a two-sided p-value."""

    a: float
    b: float
    delta: float
    low: float
    high: float
    p_value: float


def paired(metric: Metric, stats_a: Any, stats_b: Any, counts: np.ndarray, level: float = 0.95) -> dict[str, PairedResult]:
    """Return the paired bootstrap comparison of two systems scored on the same examples (same rows).

    Both systems are resampled with the same counts. The p-value is sacreBLEU's paired bootstrap
    test: the share of resampled differences, centred on their mean, at least as far from 0 as the
    observed difference (with +1 smoothing).
    """
    full = np.ones((1, counts.shape[1]))
    observed_a = {k: v[0] for k, v in resampled_values(metric, stats_a, full).items()}
    observed_b = {k: v[0] for k, v in resampled_values(metric, stats_b, full).items()}
    values_a = resampled_values(metric, stats_a, counts)
    values_b = resampled_values(metric, stats_b, counts)
    tail = (1 - level) / 2 * 100
    out = {}
    for key in metric.keys:
        diffs = values_b[key] - values_a[key]
        diffs = diffs[np.isfinite(diffs)]
        delta = float(observed_b[key] - observed_a[key])
        if diffs.size == 0 or not np.isfinite(delta):
            out[key] = PairedResult(float(observed_a[key]), float(observed_b[key]), delta, float("nan"), float("nan"), float("nan"))
            continue
        centred = diffs - diffs.mean()
        p_value = float((np.sum(np.abs(centred) >= abs(delta)) + 1) / (diffs.size + 1))
        shift = float(diffs.mean() - delta) if metric.resampling_bias else 0.0
        out[key] = PairedResult(float(observed_a[key]), float(observed_b[key]), delta,
                                float(np.percentile(diffs, tail)) - shift, float(np.percentile(diffs, 100 - tail)) - shift,
                                p_value)
    return out
