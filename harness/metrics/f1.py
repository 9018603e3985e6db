"""Unigram F1 between a response and its references (ParlAI ``F1Metric``; SPT without normalisation)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from harness.metrics.base import Batch, MeanMetric
from harness.metrics.text import Tokenizer

NORMALIZERS = {"none": Tokenizer("whitespace", False), "parlai": Tokenizer("parlai", False)}


def token_f1(pred: list[str], gold: list[str]) -> float:
    """Return ParlAI's ``_prec_recall_f1_score`` F1 of two token lists (0 when nothing overlaps).

    Hand-written: the formula is three lines and no maintained package exposes it without ParlAI.
    """
    same = sum((Counter(gold) & Counter(pred)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


class TokenF1(MeanMetric):
    """Mean over examples of the max over references of unigram F1.

    ``normalize="none"``: whitespace tokens as they are (SPT); ``"parlai"``: ``normalize_answer`` first
    (ParlAI). Chinese text is compared on characters.
    """

    def __init__(self, normalize: str = "none", key: str = "F1", scale: float = 1.0,
                 tokenizer: Tokenizer | None = None) -> None:
        if tokenizer is None and normalize not in NORMALIZERS:
            raise ValueError(f"F1 normalize must be one of {sorted(NORMALIZERS)}, not {normalize!r}")
        self.normalize = normalize
        self.tokenizer = tokenizer or NORMALIZERS[normalize]
        self.keys = (key,)
        self.scale = scale

    def values(self, batch: Batch):
        hyps, refs = batch.tokens(self.tokenizer)
        return np.array([max(token_f1(h, r) for r in rs) for h, rs in zip(hyps, refs)]), None

    def describe(self, language: str = "en") -> str:
        return f"f1:unigram-maxref-mean-norm:{self.normalize}-tok:{self.tokenizer.resolve(language).describe()}"
