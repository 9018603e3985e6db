"""ROUGE-L as pycocoevalcap computes it (nlg-eval) and ROUGE-1/2/L from Google's rouge-score (SPT)."""
from __future__ import annotations

import numpy as np

from harness.metrics.base import Batch, CocoInput, MeanMetric
from harness.metrics.text import Tokenizer, char_tokens


class CocoRougeL(CocoInput, MeanMetric):
    """pycocoevalcap ``Rouge``: LCS F-measure with beta 1.2, precision and recall each maxed over
    references, averaged per sentence (the corpus value is the mean)."""

    libraries = ("pycocoevalcap",)

    def __init__(self, tokenizer: Tokenizer = Tokenizer("nltk", True), empty: str | None = "&", key: str = "ROUGE_L",
                 scale: float = 1.0) -> None:
        super().__init__(tokenizer, empty, (key,), scale)

    def values(self, batch: Batch):
        from pycocoevalcap.rouge.rouge import Rouge

        scorer = Rouge()
        hyps, refs = self.joined(batch)
        return np.array([scorer.calc_score([h], rs) for h, rs in zip(hyps, refs)], dtype=float), None

    def describe(self, language: str = "en") -> str:
        return f"rouge:coco-lcs-beta1.2-sentmean-{self.input_signature(language)}"


class _CharTokenizer:
    """rouge-score tokenizer object for Chinese: character tokens (rouge-score's own drops non-ASCII)."""

    def tokenize(self, text: str) -> list[str]:
        return char_tokens(text.lower())


class RougeScore(MeanMetric):
    """rouge-score ``RougeScorer`` F-measures, no stemmer, max over references, mean over examples.

    SPT used HF ``evaluate('rouge')``, whose aggregator reports the median of bootstrap means; that is
    the mean up to resampling noise, so the exact mean is reported here.
    """

    libraries = ("rouge-score",)

    def __init__(self, types=("rouge1", "rouge2", "rougeL"), keys=("ROUGE-1", "ROUGE-2", "ROUGE-L"),
                 use_stemmer: bool = False, scale: float = 1.0) -> None:
        self.types = tuple(types)
        self.keys = tuple(keys)
        self.use_stemmer = use_stemmer
        self.scale = scale

    def values(self, batch: Batch):
        from rouge_score.rouge_scorer import RougeScorer

        tokenizer = _CharTokenizer() if batch.language == "zh" else None
        scorer = RougeScorer(list(self.types), use_stemmer=self.use_stemmer, tokenizer=tokenizer)
        out = np.zeros((len(batch), len(self.types)))
        for i, (hyp, refs) in enumerate(zip(batch.hypotheses, batch.references)):
            scores = scorer.score_multi(refs, hyp) if len(refs) > 1 else scorer.score(refs[0], hyp)
            out[i] = [scores[t].fmeasure for t in self.types]
        return out, None

    def describe(self, language: str = "en") -> str:
        tok = "char" if language == "zh" else "rouge-score-default"
        return f"rouge:rouge-score-{'+'.join(self.types)}-F-stem:{'yes' if self.use_stemmer else 'no'}-tok:{tok}-maxref-mean"
