"""Metric profiles: each paper's recipe as a named, frozen set of preprocessing choices and metrics.

Units: ``ScoreReport.corpus`` holds each profile's *native* unit, the one its reference tool prints
(``nlgeval``/``parlai``/``memorybank``/``dolphin``/``basic``: 0-1 like pycocoevalcap and ParlAI,
CIDEr on its 0-10 scale; ``spt``: x100 like SPT's evaluation script and sacreBLEU). ``ppl`` is never
scaled. ``ScoreReport.table_scale`` gives the factor to the unit of the papers' tables (x100 for
nlgeval, parlai, dolphin and basic; x1 for spt and memorybank), and the signature records
``unit:`` so a reader of results.json knows which.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


from harness.errors import UserError
from harness.metrics import bootstrap, signature
from harness.metrics.base import Batch, Metric
from harness.metrics.bertscore import BertScore
from harness.metrics.bleu import CocoBleu, SacreBleu, SentenceBleu
from harness.metrics.cider import CocoCider
from harness.metrics.classification import LabelMetrics
from harness.metrics.distinct import distinct
from harness.metrics.f1 import TokenF1
from harness.metrics.memory import EvidenceRecall, FactRecall, KeywordRecall
from harness.metrics.meteor import MeteorJar, NltkMeteor
from harness.metrics.perplexity import Perplexity
from harness.metrics.rouge import CocoRougeL, RougeScore
from harness.metrics.text import Tokenizer, magic_postprocess, spt_cut
from harness.records import Example, Response

HYPOTHESIS_STEPS: dict[str, Callable[[str], str]] = {"spt_cut": spt_cut, "magic": magic_postprocess}
LANGUAGES = ("en", "zh")


@dataclass
class ScoreReport:
    """The scores of one system on one task under one profile (see the module docstring for units)."""

    profile: str
    language: str
    corpus: dict[str, float]
    per_example: list[dict[str, float]]
    intervals: dict[str, tuple[float, float]]
    signature: str
    not_applicable: dict[str, str]
    table_scale: dict[str, float] = field(default_factory=dict)
    statistics: list[tuple[Metric, Any]] = field(default_factory=list, repr=False)
    interval_notes: dict[str, str] = field(default_factory=dict)
    """Why a computed metric has no interval (corpus Distinct-n), by key."""

    def table_values(self) -> dict[str, float]:
        """Return the corpus values in the unit of the papers' tables (e.g. x100 for nlgeval)."""
        return {k: v * self.table_scale.get(k, 1.0) for k, v in self.corpus.items()}


@dataclass
class Profile:
    """A named metric recipe. ``hypothesis_steps`` run on every hypothesis before any metric
    (``spt_cut``, ``magic``); each metric then tokenises as its own settings say."""

    name: str
    description: str
    metrics: tuple[Metric, ...]
    hypothesis_steps: tuple[str, ...] = ()
    unit: str = "fraction"
    table_factor: float = 100.0
    factory: Callable[..., "Profile"] | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """Return every metric name this profile can report, in order."""
        return [k for m in self.metrics for k in m.keys]

    def prepare_hypothesis(self, text: str) -> str:
        """Return ``text`` after the profile's hypothesis steps."""
        for step in self.hypothesis_steps:
            text = HYPOTHESIS_STEPS[step](text)
        return text

    def batch(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]], language: str,
              examples: Sequence[Example] | None = None, responses: Sequence[Response] | None = None) -> Batch:
        """Return the Batch the metrics score (hypotheses processed, references as given)."""
        if language not in LANGUAGES:
            raise UserError(f"unknown language '{language}'; valid choices: {', '.join(LANGUAGES)}")
        if len(hypotheses) != len(references):
            raise UserError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
        return Batch([self.prepare_hypothesis(h) for h in hypotheses], [list(r) for r in references], language,
                     examples, responses)

    def score(self, examples: Sequence[Example], responses: Sequence[Response], language: str = "en", *,
              resamples: int = bootstrap.DEFAULT_RESAMPLES, seed: int = 0) -> ScoreReport:
        """Return the report of ``responses`` to ``examples`` (same order)."""
        if len(examples) != len(responses):
            raise ValueError(f"{len(examples)} examples but {len(responses)} responses")
        batch = self.batch([r.text for r in responses], [e.references for e in examples], language, examples, responses)
        return self.score_batch(batch, resamples=resamples, seed=seed)

    def score_texts(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]], language: str = "en", *,
                    resamples: int = bootstrap.DEFAULT_RESAMPLES, seed: int = 0) -> ScoreReport:
        """Return the report of plain texts; ``references[i]`` are the references of ``hypotheses[i]``."""
        return self.score_batch(self.batch(hypotheses, references, language), resamples=resamples, seed=seed)

    def applicable(self, batch: Batch) -> tuple[list[Metric], dict[str, str]]:
        """Return the metrics that apply to ``batch`` and ``{key: reason}`` for the others."""
        usable, skipped = [], {}
        for metric in self.metrics:
            if len(batch) and not metric.relevant(batch):
                continue
            reason = "no examples" if len(batch) == 0 else metric.not_applicable(batch)
            if reason:
                skipped.update({key: reason for key in metric.keys})
            else:
                usable.append(metric)
        return usable, skipped

    def statistics(self, batch: Batch) -> tuple[list[tuple[Metric, Any]], dict[str, str]]:
        """Return ``[(metric, per-example statistics)]`` for the applicable metrics and the skipped ones.

        Slow resources start first (the METEOR JVM loads while the other metrics compute). A metric
        whose tool fails (no Java, no WordNet) is reported as not applicable with the reason.
        """
        usable, skipped = self.applicable(batch)
        for metric in usable:
            try:
                metric.prepare()
            except RuntimeError:
                pass  # reported below, where statistics() fails with the same cause
        for metric in usable:
            if metric.starts_in_background:
                try:
                    metric.begin(batch)
                except RuntimeError:
                    pass
        computed = []
        # Metrics waiting for a background start (the JVM) go last, so the start overlaps the rest.
        for metric in sorted(usable, key=lambda m: m.starts_in_background):
            try:
                computed.append((metric, metric.statistics(batch)))
            except (RuntimeError, OSError) as err:  # no Java, a missing model directory, a dead JVM
                print(f"dialbench: warning: {', '.join(metric.keys)} not computed: {err}", file=sys.stderr)
                skipped.update({key: f"failed: {err}" for key in metric.keys})
        return computed, skipped

    def score_batch(self, batch: Batch, *, resamples: int = bootstrap.DEFAULT_RESAMPLES, seed: int = 0) -> ScoreReport:
        """Return the report of a prepared batch: corpus values, per-example values, intervals, signature."""
        computed, skipped = self.statistics(batch)
        corpus: dict[str, float] = {}
        per_example: list[dict[str, float]] = [{} for _ in range(len(batch))]
        intervals: dict[str, tuple[float, float]] = {}
        notes: dict[str, str] = {}
        counts = bootstrap.resample_counts(len(batch), resamples, seed) if len(batch) and resamples else None
        for metric, stats in computed:
            values = metric.corpus(stats)
            corpus.update(values)
            for row, example_values in zip(per_example, metric.per_example(stats)):
                row.update(example_values)
            if counts is not None:
                intervals.update(bootstrap.intervals(metric, stats, counts))
            reason = bootstrap.unavailable_reason(metric)
            if reason:
                notes.update(dict.fromkeys(metric.keys, reason))
        corpus = {k: corpus[k] for k in self.keys if k in corpus}
        intervals = {k: intervals[k] for k in self.keys if k in intervals}
        scale = {k: 1.0 if k == "ppl" else self.table_factor for k in corpus}
        hyp = "+".join(self.hypothesis_steps) or "raw"
        # Every metric of the profile is named, applicable or not, so all systems scored with the same
        # profile on the same task carry the same signature.
        sig = signature.build(self.name, batch.language, hyp, self.unit, self.metrics)
        return ScoreReport(self.name, batch.language, corpus, per_example, intervals, sig, skipped, scale, computed,
                           {k: v for k, v in notes.items() if k in corpus})

    def with_options(self, **options: Any) -> "Profile":
        """Return this profile rebuilt with options (e.g. ``bertscore_model``); unknown ones are a UserError."""
        if not options:
            return self
        if self.factory is None:
            raise UserError(f"profile '{self.name}' takes no options")
        try:
            return self.factory(**{**self.options, **options})
        except TypeError as err:
            raise UserError(f"profile '{self.name}': {err}") from None

    def prepare(self) -> None:
        """Start slow resources now (the METEOR JVM loads for ~6-10 s): call before generating so the
        start overlaps the system's work. Safe to skip; scoring starts them anyway."""
        for metric in self.metrics:
            try:
                metric.prepare()
            except RuntimeError:
                pass  # reported as not applicable when scoring

    def close(self) -> None:
        """Release the metrics' resources."""
        for metric in self.metrics:
            metric.close()


# ---- the recipes ---------------------------------------------------------------------------------

NLGEVAL_TOK = Tokenizer("nltk", lowercase=True)


def common(scale: float = 1.0) -> list[Metric]:
    """Return the metrics every profile adds when inputs allow: perplexity and label metrics."""
    return [Perplexity(), LabelMetrics(scale=scale)]


def nlgeval(magic: bool = False, tokenizer: str = "nltk", meteor_chunk_size: int = 500) -> Profile:
    """MultiESC/MAGIC: the nlg-eval (pycocoevalcap) COCO recipe on lowercased nltk tokens, empty -> '&'."""
    tok = Tokenizer(tokenizer, lowercase=True)
    metrics = [CocoBleu(4, tok, "&"), MeteorJar(tok, "&", chunk_size=meteor_chunk_size), CocoRougeL(tok, "&"),
               CocoCider(tok, "&"), distinct("corpus", tokenizer=tok)] + common()
    name = "nlgeval_magic" if magic else "nlgeval"
    what = "MAGIC (hypotheses post-processed) " if magic else "MultiESC/ESConv "
    return Profile(name, what + "nlg-eval COCO recipe: Bleu_1-4, METEOR 1.5 jar, ROUGE_L, CIDEr, Dist (0-1)",
                   tuple(metrics), ("magic",) if magic else (), "fraction", 100.0, nlgeval,
                   {"magic": magic, "tokenizer": tokenizer, "meteor_chunk_size": meteor_chunk_size})


def spt(bertscore: bool = True, bertscore_model: str | None = None, bertscore_layers: int | None = None,
        bertscore_batch_size: int = 64, rouge_aggregate: str = "mean", rouge_seed: int = 0,
        distinct_split: str = "whitespace") -> Profile:
    """SPT on ConvAI2: sacreBLEU, raw F1, rouge-score, nltk METEOR, BERTScore, corpus Dist, all x100.

    Checked against an offline re-implementation of the authors' ``evaluate_runs_results.py`` on 300
    real ConvAI2 pairs: F1, BLEU, BLEU-1p..4p, METEOR and Dist-1/2 agree to float precision. Where
    the authors' script differs, a switch gives its exact behaviour:

    - ``rouge_aggregate="bootstrap_median"``: HF ``evaluate('rouge')``'s default aggregate, seeded by
      ``rouge_seed`` (the authors' is unseeded); ``mean`` (default) is the plain mean.
    - ``distinct_split="space"``: the authors split predictions on single spaces, so an emptied
      prediction or a double space adds an empty token (``["a b", "a b", ": x"]``: Dist-1 60.0 vs 50.0
      with ``whitespace``, the default).
    - Units: every value here is x100. The authors' script writes METEOR and Dist as fractions (0-1);
      the paper's table prints Dist x100, which is what this profile reports.
    - BERTScore: the paper used ``microsoft/deberta-xlarge-mnli`` (40 layers); ``bertscore_model``
      takes any bert-score model by name or path (layers from bert-score's table unless
      ``bertscore_layers`` is given); the offline default is the embedded all-MiniLM-L6-v2 (6 layers).
      The model and layer enter the signature, so a MiniLM BERT-F1 is never compared with the paper's.
    """
    metrics: list[Metric] = [TokenF1("none", "F1", 100.0), SacreBleu(),
                             RougeScore(scale=100.0, aggregate=rouge_aggregate, seed=rouge_seed),
                             NltkMeteor(scale=100.0)]
    if bertscore:
        metrics.append(BertScore(bertscore_model, bertscore_layers, bertscore_batch_size, scale=100.0))
    if distinct_split not in ("whitespace", "space"):
        raise UserError(f"profile 'spt': distinct_split '{distinct_split}' is not one of whitespace, space")
    metrics += [distinct("corpus", tokenizer=Tokenizer(distinct_split), scale=100.0)] + common(100.0)
    return Profile("spt", "SPT/ConvAI2: F1, sacreBLEU + precisions, ROUGE-1/2/L, METEOR (nltk), BERTScore, Dist (x100)",
                   tuple(metrics), ("spt_cut",), "percent", 1.0, spt,
                   {"bertscore": bertscore, "bertscore_model": bertscore_model, "bertscore_layers": bertscore_layers,
                    "bertscore_batch_size": bertscore_batch_size, "rouge_aggregate": rouge_aggregate,
                    "rouge_seed": rouge_seed, "distinct_split": distinct_split})


def parlai() -> Profile:
    """ParlAI ConvAI2 baselines: normalize_answer F1, sentence BLEU-1..4 averaged, inter-distinct (0-1)."""
    tok = Tokenizer("parlai")
    metrics = [TokenF1("parlai", "f1"), SentenceBleu(tok), distinct("corpus", tokenizer=tok, key="interdistinct-{n}")]
    return Profile("parlai", "ParlAI-style: f1 (normalize_answer), bleu-1..4 sentence-averaged, interdistinct (0-1)",
                   tuple(metrics + common()), (), "fraction", 100.0, parlai, {})


def memorybank(ks: Sequence[int] = (1, 3, 5)) -> Profile:
    """MemoryBank probes: evidence recall@k, keyword recall, answer F1 (characters for Chinese)."""
    answer_tok = Tokenizer("parlai", zh_kind="char-nopunct")
    metrics = [EvidenceRecall(ks), KeywordRecall(), TokenF1(key="answer_f1", tokenizer=answer_tok, normalize="parlai")]
    return Profile("memorybank", "MemoryBank probes: evidence_recall@k, keyword_recall, answer_f1 (0-1)",
                   tuple(metrics + common()), (), "fraction", 1.0, memorybank, {"ks": tuple(ks)})


def dolphin(bertscore_model: str | None = None, bertscore_layers: int | None = None,
            fact_threshold: float = 0.5) -> Profile:
    """Dolphin/COMEDY (Chinese): character BLEU, ROUGE-L, F1, Dist, fact recall; BERTScore with a given model."""
    tok = Tokenizer("whitespace", lowercase=True, zh_kind="char")
    metrics: list[Metric] = [CocoBleu(4, tok, None, key="BLEU-{n}"), CocoRougeL(tok, None, key="ROUGE-L"),
                             TokenF1(key="F1", tokenizer=Tokenizer("whitespace", True, "char-nopunct")),
                             distinct("corpus", tokenizer=tok), FactRecall(fact_threshold)]
    if bertscore_model:
        metrics.append(BertScore(bertscore_model, bertscore_layers))
    return Profile("dolphin", "Dolphin/COMEDY stand-ins: char BLEU-1..4, ROUGE-L, F1, Dist, fact_recall (0-1)",
                   tuple(metrics + common()), (), "fraction", 100.0, dolphin,
                   {"bertscore_model": bertscore_model, "bertscore_layers": bertscore_layers,
                    "fact_threshold": fact_threshold})


def basic() -> Profile:
    """A quick profile without Java or models: COCO BLEU-1/2, ROUGE-L, corpus Dist-1/2, ParlAI F1."""
    tok = NLGEVAL_TOK
    metrics = [CocoBleu(2, tok, "&"), CocoRougeL(tok, "&"), distinct("corpus", tokenizer=tok), TokenF1("parlai")]
    return Profile("basic", "quick check, no Java/models: Bleu_1-2, ROUGE_L, Dist-1/2, F1 (0-1)",
                   tuple(metrics + common()), (), "fraction", 100.0, basic, {})


NLGEVAL = nlgeval()
NLGEVAL_MAGIC = nlgeval(magic=True)
SPT = spt()
PARLAI = parlai()
MEMORYBANK = memorybank()
DOLPHIN = dolphin()
BASIC = basic()
