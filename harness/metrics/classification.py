"""Label metrics (ESConv strategy prediction): accuracy, weighted F1 and macro F1 from a confusion matrix."""
from __future__ import annotations

import numpy as np

from harness.metrics.base import Batch, Metric


class LabelMetrics(Metric):
    """Accuracy and F1 of ``Response.label`` against ``Example.label``, as scikit-learn defines them.

    Statistics per example are a one-hot cell of the confusion matrix over the labels seen (gold or
    predicted), so sums over any resample give its confusion matrix. F1 averaging follows
    ``sklearn.metrics.f1_score``: only labels present in the (re)sample's gold or predicted labels
    count, ``zero_division=0``; ``weighted`` weights by gold support. Tests check equality with
    scikit-learn; the confusion-matrix formula is written here because calling scikit-learn once per
    bootstrap resample would dominate the run time. A missing prediction counts as the label
    ``<none>`` (wrong).
    """

    keys = ("accuracy", "weighted_f1", "macro_f1")
    needs_references = False

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def relevant(self, batch: Batch) -> bool:
        return batch.examples is not None and any(e.label is not None for e in batch.examples)

    def not_applicable(self, batch: Batch) -> str | None:
        if batch.examples is None or batch.responses is None:
            return "no labels (plain text scoring)"
        missing = sum(e.label is None for e in batch.examples)
        if missing:
            return f"{missing} of {len(batch)} examples have no gold label"
        if all(r.label is None for r in batch.responses):
            return "system predicts no labels"
        return None

    def statistics(self, batch: Batch) -> np.ndarray:
        gold = [e.label for e in batch.examples]
        pred = [r.label if r.label is not None else "<none>" for r in batch.responses]
        labels = sorted(set(gold) | set(pred))
        index = {label: i for i, label in enumerate(labels)}
        k = len(labels)
        rows = np.zeros((len(gold), k * k))
        for i, (g, p) in enumerate(zip(gold, pred)):
            rows[i, index[g] * k + index[p]] = 1.0
        return rows

    def finalize(self, totals: np.ndarray) -> dict[str, float]:
        many = self.finalize_many(np.asarray(totals, dtype=float).reshape(1, -1))
        return {key: float(v[0]) for key, v in many.items()}

    def finalize_many(self, totals: np.ndarray) -> dict[str, np.ndarray]:
        k = int(round(np.sqrt(totals.shape[1])))
        cm = totals.reshape(-1, k, k)  # [resample, gold, predicted]
        tp = np.einsum("rii->ri", cm)
        support, predicted = cm.sum(axis=2), cm.sum(axis=1)
        n = support.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            denom = support + predicted
            f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
            present = denom > 0
            macro = (f1 * present).sum(axis=1) / present.sum(axis=1)
            weighted = (f1 * support).sum(axis=1) / n
            accuracy = tp.sum(axis=1) / n
        return {"accuracy": accuracy * self.scale, "weighted_f1": weighted * self.scale, "macro_f1": macro * self.scale}

    def per_example(self, stats) -> list[dict[str, float]]:
        k = int(round(np.sqrt(stats.shape[1])))
        return [{"accuracy": float(np.trace(row.reshape(k, k))) * self.scale} for row in np.asarray(stats)]

    def describe(self, language: str = "en") -> str:
        return "labels:accuracy+f1-weighted+macro-sklearn-zero_division0"
