"""Perplexity from a system's summed reference log-likelihoods: exp(sum NLL / sum tokens) over the corpus."""
from __future__ import annotations

import math

import numpy as np

from harness.metrics.base import Batch, Metric


class Perplexity(Metric):
    """Token-level corpus perplexity (SPT's and the GPT-2 baseline's definition).

    Statistics per example are (summed NLL of the first reference in nats, its token count), taken
    from ``Response.ref_nll``/``ref_tokens``; the per-example value is that example's perplexity.
    """

    keys = ("ppl",)
    needs_references = False

    def not_applicable(self, batch: Batch) -> str | None:
        if batch.responses is None:
            return "no system log-likelihoods (plain text scoring)"
        missing = sum(1 for r in batch.responses if r.ref_nll is None or not r.ref_tokens)
        if missing == len(batch.responses):
            return "system gives no log-likelihoods"
        if missing:
            return f"system gives no log-likelihoods for {missing} of {len(batch)} responses"
        return None

    def statistics(self, batch: Batch) -> np.ndarray:
        return np.array([[float(r.ref_nll), float(r.ref_tokens)] for r in batch.responses], dtype=float)

    def finalize(self, totals: np.ndarray) -> dict[str, float]:
        return {"ppl": math.exp(totals[0] / totals[1]) if totals[1] else float("nan")}

    def finalize_many(self, totals: np.ndarray) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return {"ppl": np.exp(totals[:, 0] / totals[:, 1])}

    def describe(self, language: str = "en") -> str:
        return "ppl:exp-token-mean-nll-ref1"
