"""CIDEr-D as pycocoevalcap ``Cider`` computes it (n=4, sigma=6, IDF from the scored references)."""
from __future__ import annotations

import numpy as np

from harness.metrics.base import Batch, CocoInput, MeanMetric
from harness.metrics.text import Tokenizer


class CocoCider(CocoInput, MeanMetric):
    """pycocoevalcap ``CiderScorer`` over the whole batch, so document frequencies come from every
    reference scored together (a single example scores 0, as in nlg-eval).

    The corpus value is the mean of per-example scores. For bootstrap intervals the IDF stays the
    one of the full set and the per-example scores are resampled: re-deriving IDF from a resample
    would make the metric depend on which duplicates were drawn, not on the system.
    """

    libraries = ("pycocoevalcap",)

    def __init__(self, tokenizer: Tokenizer = Tokenizer("nltk", True), empty: str | None = "&", key: str = "CIDEr",
                 scale: float = 1.0) -> None:
        super().__init__(tokenizer, empty, (key,), scale)

    def values(self, batch: Batch):
        from pycocoevalcap.cider.cider_scorer import CiderScorer

        scorer = CiderScorer(n=4, sigma=6.0)
        for h, rs in zip(*self.joined(batch)):
            scorer += (h, rs)
        _, scores = scorer.compute_score()
        return np.asarray(scores, dtype=float), None

    def describe(self, language: str = "en") -> str:
        return f"cider:coco-D-n4-sigma6-idf:batch-refs-{self.input_signature(language)}"
