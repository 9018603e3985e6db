"""ROUGE-L as pycocoevalcap computes it (nlg-eval) and ROUGE-1/2/L from Google's rouge-score (SPT)."""
from __future__ import annotations

import numpy as np

from harness.errors import UserError
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


AGGREGATES = ("mean", "bootstrap_median")


class RougeScore(MeanMetric):
    """rouge-score ``RougeScorer`` F-measures, no stemmer, max over references, aggregated over examples.

    ``aggregate="mean"`` (default) reports the plain mean. SPT's script calls HF ``evaluate('rouge')``,
    whose default aggregator is rouge-score's ``BootstrapAggregator``: the median of 1,000 bootstrap
    means drawn from numpy's *unseeded* global random state. That is not the mean plus noise: the
    median of resampled means of skewed per-example scores sits systematically below the mean (0.005-0.02
    x100 on 300 real ConvAI2 pairs) and moves from run to run. ``aggregate="bootstrap_median"`` runs
    that same aggregator with numpy's legacy generator seeded by ``seed`` (recorded in the signature),
    restoring the global state afterwards. Bootstrap intervals are those of the mean either way.
    """

    libraries = ("rouge-score",)

    def __init__(self, types=("rouge1", "rouge2", "rougeL"), keys=("ROUGE-1", "ROUGE-2", "ROUGE-L"),
                 use_stemmer: bool = False, scale: float = 1.0, aggregate: str = "mean", seed: int = 0,
                 resamples: int = 1000) -> None:
        if aggregate not in AGGREGATES:
            raise UserError(f"rouge aggregate '{aggregate}' is not one of {', '.join(AGGREGATES)}")
        self.aggregate = aggregate
        self.seed = seed
        self.resamples = resamples
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
        agg = "mean" if self.aggregate == "mean" else f"agg:bootstrap_median-n{self.resamples}-seed{self.seed}"
        return f"rouge:rouge-score-{'+'.join(self.types)}-F-stem:{'yes' if self.use_stemmer else 'no'}-tok:{tok}-maxref-{agg}"

    def corpus(self, stats) -> dict[str, float]:
        """Return the corpus values: the mean, or rouge-score's seeded bootstrap median (class docstring)."""
        if self.aggregate == "mean":
            return super().corpus(stats)
        from rouge_score.scoring import BootstrapAggregator, Score

        rows = np.asarray(stats, dtype=float)
        values = rows[:, :-1] / np.where(rows[:, -1:] > 0, rows[:, -1:], 1.0)
        aggregator = BootstrapAggregator(n_samples=self.resamples)
        for row in values[rows[:, -1] > 0]:
            aggregator.add_scores({t: Score(v, v, v) for t, v in zip(self.types, row)})
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            result = aggregator.aggregate()
        finally:
            np.random.set_state(state)
        return {key: float(result[t].mid.fmeasure) * self.scale for key, t in zip(self.keys, self.types)}
