"""BLEU three ways, because papers disagree: COCO corpus BLEU, sacreBLEU corpus BLEU, ParlAI sentence BLEU."""
from __future__ import annotations

import logging

import math
from typing import Any

import numpy as np

from harness.metrics.base import Batch, CocoInput, MeanMetric, Metric
from harness.metrics.text import Tokenizer


class CocoBleu(CocoInput, Metric):
    """Corpus BLEU-1..n as pycocoevalcap ``Bleu(4)`` computes it (nlg-eval, MultiESC, MAGIC).

    Statistics per example: hypothesis length, the *closest* reference length, and per order the
    number of hypothesis n-grams and clipped matches (pycocoevalcap ``cook_test``). Finalising uses
    pycocoevalcap's formula, including its ``tiny=1e-15``/``small=1e-9`` guards, so an order without
    matches gives a tiny positive value rather than 0 (nlg-eval's test vector 2: BLEU-4 9.036e-05).
    The per-example values are pycocoevalcap's sentence BLEU list. Hand-written only because
    pycocoevalcap offers no way to score a resample from stored statistics.
    """

    libraries = ("pycocoevalcap",)

    def __init__(self, n: int = 4, tokenizer: Tokenizer = Tokenizer("nltk", True), empty: str | None = "&",
                 key: str = "Bleu_{n}", scale: float = 1.0) -> None:
        super().__init__(tokenizer, empty, tuple(key.format(n=k) for k in range(1, n + 1)), scale)
        self.n = n

    def statistics(self, batch: Batch) -> np.ndarray:
        from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

        rows = np.zeros((len(batch), 2 + 2 * self.n))
        for i, (hyp, rs) in enumerate(zip(*self.joined(batch))):
            cooked = cook_test(hyp, cook_refs(rs, n=self.n), eff="closest", n=self.n)
            rows[i, 0] = cooked["testlen"]
            rows[i, 1] = cooked["reflen"]
            rows[i, 2:2 + self.n] = cooked["guess"]
            rows[i, 2 + self.n:] = cooked["correct"]
        return rows

    def finalize(self, totals: np.ndarray) -> dict[str, float]:
        small, tiny = 1e-9, 1e-15
        testlen, reflen = totals[0], totals[1]
        guess, correct = totals[2:2 + self.n], totals[2 + self.n:]
        ratio = (testlen + tiny) / (reflen + small)
        penalty = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
        out, product = {}, 1.0
        for k in range(self.n):
            product *= (float(correct[k]) + tiny) / (float(guess[k]) + small)
            out[self.keys[k]] = product ** (1.0 / (k + 1)) * penalty * self.scale
        return out

    def describe(self, language: str = "en") -> str:
        return f"bleu:coco-n{self.n}-closest-{self.input_signature(language)}"


class _DropTokenizedPeriod(logging.Filter):
    """Drop sacreBLEU's "That's 100 lines that end in a tokenized period" warning (three lines): dialogue corpora
    (ConvAI2, ESConv) are distributed pre-tokenised, so it fires on every run and says nothing new."""

    LINES = ("tokenized period", "forgot to detokenize", "insist your data is detokenized")
    """The three lines of that one warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(line in message for line in self.LINES)


def quiet_tokenized_period_warning() -> None:
    """Install the filter on sacreBLEU's logger once (its other warnings stay)."""
    logger = logging.getLogger("sacrebleu")
    if not any(isinstance(f, _DropTokenizedPeriod) for f in logger.filters):
        logger.addFilter(_DropTokenizedPeriod())


class SacreBleu(Metric):
    """sacreBLEU ``BLEU().corpus_score`` (SPT): BLEU plus its n-gram precisions, all on sacreBLEU's 0-100 scale.

    SPT's "bleu-1..4" columns are these *precisions*, reported here as ``prec_key``. Statistics are
    sacreBLEU's own per-segment statistics and finalising calls sacreBLEU's ``_compute_score_from_stats``.
    For Chinese the ``zh`` tokenizer of sacreBLEU is used unless ``tokenize`` says otherwise.
    """

    libraries = ("sacrebleu",)

    def __init__(self, tokenize: str = "13a", lowercase: bool = False, key: str = "BLEU",
                 prec_key: str = "BLEU-{n}p", zh_tokenize: str = "zh") -> None:
        self.tokenize = tokenize
        self.zh_tokenize = zh_tokenize
        self.lowercase = lowercase
        self.keys = (key,) + tuple(prec_key.format(n=n) for n in range(1, 5))
        self._bleu: dict[str, Any] = {}

    def _scorer(self, language: str):
        from sacrebleu.metrics import BLEU

        tok = self.zh_tokenize if language == "zh" else self.tokenize
        if tok not in self._bleu:
            self._bleu[tok] = BLEU(tokenize=tok, lowercase=self.lowercase)
        return self._bleu[tok]

    def statistics(self, batch: Batch) -> np.ndarray:
        quiet_tokenized_period_warning()
        width = max(len(r) for r in batch.references)
        streams = [[rs[j] if j < len(rs) else None for rs in batch.references] for j in range(width)]
        stats = self._scorer(batch.language)._extract_corpus_statistics(batch.hypotheses, streams)
        return np.asarray(stats, dtype=float)

    def finalize(self, totals: np.ndarray) -> dict[str, float]:
        # The tokenizer only matters for statistics; any BLEU instance finalises them identically.
        score = self._scorer("en")._compute_score_from_stats([int(round(x)) for x in totals])
        return dict(zip(self.keys, [float(score.score)] + [float(p) for p in score.precisions]))

    def describe(self, language: str = "en") -> str:
        tok = self.zh_tokenize if language == "zh" else self.tokenize
        return f"bleu:sacrebleu-corpus-tok:{tok}-case:{'lc' if self.lowercase else 'mixed'}-smooth:exp"


class SentenceBleu(MeanMetric):
    """Sentence-level nltk BLEU-1..4 averaged over examples, as ParlAI's ``BleuMetric.compute``.

    Text goes through ``normalize_answer`` and is split on spaces; BLEU-k uses uniform weights 1/k and
    ``SmoothingFunction(epsilon=1e-12).method1``. Averaging sentence scores over-estimates corpus BLEU.
    """

    libraries = ("nltk",)

    def __init__(self, tokenizer: Tokenizer = Tokenizer("parlai", False), key: str = "bleu-{n}", orders=(1, 2, 3, 4),
                 scale: float = 1.0) -> None:
        self.tokenizer = tokenizer
        self.orders = tuple(orders)
        self.keys = tuple(key.format(n=n) for n in self.orders)
        self.scale = scale

    def values(self, batch: Batch):
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

        smooth = SmoothingFunction(epsilon=1e-12).method1
        hyps, refs = batch.tokens(self.tokenizer)
        out = np.zeros((len(batch), len(self.orders)))
        for i, (hyp, rs) in enumerate(zip(hyps, refs)):
            for j, k in enumerate(self.orders):
                out[i, j] = sentence_bleu(rs, hyp, weights=[1.0 / k] * k, smoothing_function=smooth)
        return out, None

    def describe(self, language: str = "en") -> str:
        tok = self.tokenizer.resolve(language).describe()
        return f"bleu:nltk-sentence-mean-smooth:method1-eps1e-12-tok:{tok}"
