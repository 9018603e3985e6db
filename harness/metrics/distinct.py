"""Distinct-n: unique n-grams / all n-grams, over the corpus (SPT, MultiESC) or per response (ParlAI intra)."""
from __future__ import annotations

import numpy as np
from scipy import sparse

from harness.metrics.base import Batch, MeanMetric, Metric
from harness.metrics.text import Tokenizer


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


class _DistinctOptions:
    """Settings shared by both scopes: n-gram orders, tokenizer, key pattern, scale."""

    def __init__(self, orders=(1, 2), tokenizer: Tokenizer = Tokenizer("whitespace"), key: str = "Dist-{n}",
                 scale: float = 1.0) -> None:
        self.orders = tuple(orders)
        self.tokenizer = tokenizer
        self.keys = tuple(key.format(n=n) for n in self.orders)
        self.scale = scale

    @property
    def value_range(self) -> tuple[float, float]:
        return (0.0, self.scale)

    def _describe(self, scope: str, language: str) -> str:
        return f"dist:{scope}-n{','.join(map(str, self.orders))}-tok:{self.tokenizer.resolve(language).describe()}"


class CorpusDistinct(_DistinctOptions, Metric):
    """Corpus Distinct-n (scope="corpus"): distinct n-grams of all hypotheses / total n-grams.

    Statistics are a sparse n-gram count matrix (one column per n-gram seen, per order) plus the
    totals, so a resample's value is exact: the union of its n-grams is the set of non-zero columns of
    the weighted sum. Hand-written: no maintained library computes corpus distinct-n.
    """

    needs_references = False
    size_dependent = True
    interval_unavailable = ("not available: corpus Distinct-n depends on corpus size and a bootstrap resample "
                            "repeats responses, which lowers it, so resampled values do not describe its uncertainty")

    def statistics(self, batch: Batch):
        # Layout: the per-order totals first, then n-gram columns interleaved by order
        # (column = m + id * m + j for order j of m), so finalising needs no batch-specific state.
        hyps, _ = batch.tokens(self.tokenizer)
        m = len(self.orders)
        vocab: dict[tuple[str, ...], int] = {}
        rows, cols, vals = [], [], []
        for i, toks in enumerate(hyps):
            for j, n in enumerate(self.orders):
                grams = _ngrams(toks, n)
                rows.append(i)
                cols.append(j)
                vals.append(float(len(grams)))
                for g in grams:
                    rows.append(i)
                    cols.append(m + vocab.setdefault(g, len(vocab)) * m + j)
                    vals.append(1.0)
        counts = sparse.csr_matrix((vals, (rows, cols)), shape=(len(batch), m + len(vocab) * m))
        counts.sum_duplicates()
        return counts

    def finalize(self, totals: np.ndarray) -> dict[str, float]:
        many = self.finalize_many(np.asarray(totals, dtype=float).reshape(1, -1))
        return {key: float(values[0]) for key, values in many.items()}

    def finalize_many(self, totals: np.ndarray) -> dict[str, np.ndarray]:
        m = len(self.orders)
        out = {}
        for j, key in enumerate(self.keys):
            total = totals[:, j]
            unique = np.count_nonzero(totals[:, m + j::m], axis=1)
            out[key] = np.where(total > 0, unique / np.where(total > 0, total, 1) * self.scale, 0.0)
        return out

    def per_example(self, stats) -> list[dict[str, float]]:
        # Counted on the sparse rows: densifying N x (n-gram vocabulary) would cost gigabytes.
        m, n = len(self.orders), stats.shape[0]
        coo = stats.tocoo()
        is_gram = coo.col >= m
        order = (coo.col - m) % m
        totals = np.asarray(stats[:, :m].todense())
        rows = [{} for _ in range(n)]
        for j, key in enumerate(self.keys):
            unique = np.bincount(coo.row[is_gram & (order == j)], minlength=n)
            for i in range(n):
                rows[i][key] = float(unique[i] / totals[i, j] * self.scale) if totals[i, j] else 0.0
        return rows

    def describe(self, language: str = "en") -> str:
        return self._describe("corpus", language)


class ResponseDistinct(_DistinctOptions, MeanMetric):
    """Per-response Distinct-n averaged over responses (scope="response", ParlAI's intra-distinct);
    inflated relative to corpus scope. An empty response counts as 0."""

    needs_references = False

    def values(self, batch: Batch):
        hyps, _ = batch.tokens(self.tokenizer)
        out = np.zeros((len(batch), len(self.orders)))
        for i, toks in enumerate(hyps):
            for j, n in enumerate(self.orders):
                grams = _ngrams(toks, n)
                out[i, j] = len(set(grams)) / len(grams) if grams else 0.0
        return out, None

    def describe(self, language: str = "en") -> str:
        return self._describe("response-mean", language)


def distinct(scope: str = "corpus", **kwargs) -> Metric:
    """Return Distinct-n with the given ``scope`` ("corpus" or "response")."""
    if scope == "corpus":
        return CorpusDistinct(**kwargs)
    if scope == "response":
        return ResponseDistinct(**kwargs)
    raise ValueError(f"Distinct scope must be 'corpus' or 'response', not {scope!r}")
