"""Our metric classes equal the libraries they wrap on random inputs (sacreBLEU, rouge-score,
pycocoevalcap, scikit-learn, nltk) and the METEOR aggregation equals the jar's own EVAL."""
from __future__ import annotations

import contextlib
import io
import random

import numpy as np
import pytest

from harness.metrics.base import Batch
from harness.metrics.bleu import CocoBleu, SacreBleu, SentenceBleu
from harness.metrics.cider import CocoCider
from harness.metrics.classification import LabelMetrics
from harness.metrics.f1 import TokenF1
from harness.metrics.rouge import CocoRougeL, RougeScore
from harness.metrics.text import Tokenizer
from harness.records import Example, Response
from tests.metrics.metric_helpers import needs_java

VOCAB = "the a cat dog sat on mat I you We feel sad happy , . ! ? really don't it's school friend 3 42".split()


def sentence(rng: random.Random, low: int = 1, high: int = 18) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(low, high)))


def corpus(seed: int, n: int = 40, refs: int = 1) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)], [[sentence(rng) for _ in range(refs)] for _ in range(n)]


def corpus_value(metric, batch):
    return metric.finalize(np.asarray(metric.statistics(batch)).sum(axis=0))


@pytest.mark.parametrize("seed,refs", [(0, 1), (1, 1), (2, 3)])
def test_sacrebleu_equals_library(seed, refs):
    import sacrebleu

    hyps, references = corpus(seed, refs=refs)
    ours = corpus_value(SacreBleu(), Batch(hyps, references))
    theirs = sacrebleu.corpus_bleu(hyps, [[r[j] for r in references] for j in range(refs)])
    assert ours["BLEU"] == pytest.approx(theirs.score, abs=1e-9)
    for n in range(4):
        assert ours[f"BLEU-{n + 1}p"] == pytest.approx(theirs.precisions[n], abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rouge_score_equals_library(seed):
    from rouge_score.rouge_scorer import RougeScorer

    hyps, references = corpus(seed)
    ours = corpus_value(RougeScore(scale=100.0), Batch(hyps, references))
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    scores = [scorer.score(r[0], h) for h, r in zip(hyps, references)]
    for key, kind in (("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeL")):
        assert ours[key] == pytest.approx(100 * np.mean([s[kind].fmeasure for s in scores]), abs=1e-9)


@pytest.mark.parametrize("seed,refs", [(3, 1), (4, 2)])
def test_coco_scorers_equal_pycocoevalcap(seed, refs):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    hyps, references = corpus(seed, refs=refs)
    tok = Tokenizer("whitespace")
    batch = Batch(hyps, references)
    gts = {i: r for i, r in enumerate(references)}
    res = {i: [h] for i, h in enumerate(hyps)}
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, bleu_sentences = Bleu(4).compute_score(gts, res)
    ours = corpus_value(CocoBleu(4, tok, None), batch)
    assert [ours[f"Bleu_{n}"] for n in range(1, 5)] == pytest.approx(bleu, abs=1e-12)
    per_example = CocoBleu(4, tok, None).per_example(CocoBleu(4, tok, None).statistics(batch))
    assert [row["Bleu_4"] for row in per_example] == pytest.approx(bleu_sentences[3], abs=1e-12)
    assert corpus_value(CocoRougeL(tok, None), batch)["ROUGE_L"] == pytest.approx(Rouge().compute_score(gts, res)[0])
    assert corpus_value(CocoCider(tok, None), batch)["CIDEr"] == pytest.approx(Cider().compute_score(gts, res)[0])


@needs_java
def test_meteor_aggregate_equals_jar_eval():
    from harness.metrics.meteor import jar_segment_stats, meteor_from_stats
    from harness.metrics.meteor_process import shared_process

    proc = shared_process()
    hyps, references = corpus(5, n=60, refs=2)
    hyps[0], hyps[1] = "", "the cat sat on the mat"  # no match at all / a perfect single-chunk match
    references[1] = ["the cat sat on the mat", "a dog"]
    stats = np.array(proc.statistics(list(zip(hyps, references))))
    segments, aggregate = proc.evaluate(stats)
    summable = jar_segment_stats(stats)
    assert meteor_from_stats(summable.sum(axis=0)) == pytest.approx(aggregate, abs=1e-12)
    assert [meteor_from_stats(row) for row in summable] == pytest.approx(segments, abs=1e-12)
    for subset in ([1, 1], [1, 2], list(range(0, 60, 3))):  # a perfect segment twice; with another; a third
        assert meteor_from_stats(summable[subset].sum(axis=0)) == pytest.approx(proc.evaluate(stats[subset])[1], abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_label_metrics_equal_sklearn(seed):
    from sklearn.metrics import accuracy_score, f1_score

    rng = random.Random(seed)
    labels = ["Question", "Reflection", "Self-disclosure", "Others", "Affirmation"]
    gold = [rng.choice(labels) for _ in range(80)]
    pred = [rng.choice(labels[:-1] + ["invalid"]) for _ in range(80)]
    examples = [Example(str(i), "t", "d", (), ("x",), label=g) for i, g in enumerate(gold)]
    responses = [Response(str(i), "x", label=p) for i, p in enumerate(pred)]
    ours = corpus_value(LabelMetrics(), Batch(["x"] * 80, [["x"]] * 80, "en", examples, responses))
    assert ours["accuracy"] == pytest.approx(accuracy_score(gold, pred))
    assert ours["weighted_f1"] == pytest.approx(f1_score(gold, pred, average="weighted", zero_division=0))
    assert ours["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro", zero_division=0))


def test_parlai_f1_and_bleu_match_definitions():
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    batch = Batch(["The cat sat!", "hello there"], [["a cat sat down."], ["general kenobi", "hello world"]])
    f1 = TokenF1("parlai").per_example(TokenF1("parlai").statistics(batch))
    assert f1[0]["F1"] == pytest.approx(0.8)  # "cat sat" vs "cat sat down"
    assert f1[1]["F1"] == pytest.approx(0.5)  # best reference "hello world"
    raw = TokenF1("none").per_example(TokenF1("none").statistics(batch))
    assert raw[0]["F1"] == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))  # only "cat" matches unnormalised
    bleu = SentenceBleu().per_example(SentenceBleu().statistics(batch))
    expected = sentence_bleu([["cat", "sat", "down"]], ["cat", "sat"], weights=[0.25] * 4,
                             smoothing_function=SmoothingFunction(epsilon=1e-12).method1)
    assert bleu[0]["bleu-4"] == pytest.approx(expected)
