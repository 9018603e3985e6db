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


def unavailable_reason(metric: Metric) -> str | None:
    """Return why resampling gives no valid interval for ``metric`` (corpus Distinct-n), or None."""
    return metric.interval_unavailable


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def intervals(metric: Metric, stats: Any, counts: np.ndarray, level: float = 0.95,
              observed: dict[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """Return the percentile bootstrap interval of each key of ``metric``.

    Percentiles of resampled values never leave the range the metric's values take, so no interval
    can; no bias shift is applied. A metric with ``interval_unavailable`` gets none (see
    :func:`unavailable_reason`). ``observed`` is accepted for callers of the first API and unused.
    """
    if unavailable_reason(metric):
        return {}
    out = {}
    for key, values in resampled_values(metric, stats, counts).items():
        finite = values[np.isfinite(values)]
        out[key] = _percentiles(finite, level) if finite.size else (float("nan"), float("nan"))
    return out


@dataclass(frozen=True)
class PairedResult:
    """B minus A for one metric: the observed difference, its 95% interval and a two-sided p-value.

    ``low``/``high``/``p_value`` are NaN with ``note`` saying why when no valid interval exists.
    """

    a: float
    b: float
    delta: float
    low: float
    high: float
    p_value: float
    note: str = ""


def paired(metric: Metric, stats_a: Any, stats_b: Any, counts: np.ndarray, level: float = 0.95) -> dict[str, PairedResult]:
    """Return the paired bootstrap comparison of two systems scored on the same examples (same rows).

    Both systems are resampled with the same counts, giving one distribution of differences
    ``B* - A*``. The interval is its percentile interval and the p-value is read from the same
    distribution (twice the smaller share of resampled differences on either side of 0, +1
    smoothed), so an interval that excludes 0 has p below ``1 - level`` up to resampling granularity.
    """
    full = np.ones((1, counts.shape[1]))
    observed_a = {k: v[0] for k, v in resampled_values(metric, stats_a, full).items()}
    observed_b = {k: v[0] for k, v in resampled_values(metric, stats_b, full).items()}
    nan = float("nan")
    reason = unavailable_reason(metric)
    if reason:
        return {key: PairedResult(float(observed_a[key]), float(observed_b[key]),
                                  float(observed_b[key] - observed_a[key]), nan, nan, nan, reason)
                for key in metric.keys}
    values_a = resampled_values(metric, stats_a, counts)
    values_b = resampled_values(metric, stats_b, counts)
    out = {}
    for key in metric.keys:
        diffs = values_b[key] - values_a[key]
        diffs = diffs[np.isfinite(diffs)]
        delta = float(observed_b[key] - observed_a[key])
        if diffs.size == 0 or not np.isfinite(delta):
            out[key] = PairedResult(float(observed_a[key]), float(observed_b[key]), delta, nan, nan, nan,
                                    "no finite resampled difference")
            continue
        low, high = _percentiles(diffs, level)
        out[key] = PairedResult(float(observed_a[key]), float(observed_b[key]), delta, low, high, p_value(diffs))
    return out


def p_value(diffs: np.ndarray) -> float:
    """Return the two-sided bootstrap p-value of "no difference" from resampled differences."""
    below = int(np.sum(diffs <= 0))
    above = int(np.sum(diffs >= 0))
    return float(min(1.0, 2 * (min(below, above) + 1) / (diffs.size + 1)))
