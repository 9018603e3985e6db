"""Bootstrap intervals and paired comparisons recompute corpus metrics exactly from statistics."""
from __future__ import annotations

import random

import numpy as np
import pytest

from harness.metrics import bootstrap
from harness.metrics.base import Batch
from harness.metrics.bleu import SacreBleu
from harness.metrics.classification import LabelMetrics
from harness.metrics.distinct import CorpusDistinct
from harness.metrics.profiles import basic
from harness.records import Example, Response


def test_resampled_sacrebleu_equals_scoring_the_resample(esconv_pairs):
    import sacrebleu

    hyps, refs = esconv_pairs[0][:120], esconv_pairs[1][:120]
    metric = SacreBleu()
    stats = metric.statistics(Batch(hyps, refs))
    counts = bootstrap.resample_counts(len(hyps), 5, seed=3)
    values = bootstrap.resampled_values(metric, stats, counts)
    for r in range(5):
        idx = np.repeat(np.arange(len(hyps)), counts[r].astype(int))
        direct = sacrebleu.corpus_bleu([hyps[i] for i in idx], [[refs[i][0] for i in idx]])
        assert values["BLEU"][r] == pytest.approx(direct.score, abs=1e-9)


def test_resampled_distinct_and_labels_are_exact():
    from sklearn.metrics import f1_score

    rng = random.Random(0)
    words = "a b c d e f g h".split()
    hyps = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(30)]
    gold = [rng.choice("xyz") for _ in range(30)]
    pred = [rng.choice("xyw") for _ in range(30)]
    examples = [Example(str(i), "t", "d", (), ("r",), label=g) for i, g in enumerate(gold)]
    responses = [Response(str(i), h, label=p) for i, (h, p) in enumerate(zip(hyps, pred))]
    batch = Batch(hyps, [["r"]] * 30, "en", examples, responses)
    counts = bootstrap.resample_counts(30, 4, seed=1)
    dist = CorpusDistinct()
    dist_values = bootstrap.resampled_values(dist, dist.statistics(batch), counts)
    labels = LabelMetrics()
    label_values = bootstrap.resampled_values(labels, labels.statistics(batch), counts)
    for r in range(4):
        idx = np.repeat(np.arange(30), counts[r].astype(int))
        toks = [t for i in idx for t in hyps[i].split()]
        assert dist_values["Dist-1"][r] == pytest.approx(len(set(toks)) / len(toks))
        expected = f1_score([gold[i] for i in idx], [pred[i] for i in idx], average="macro", zero_division=0)
        assert label_values["macro_f1"][r] == pytest.approx(expected)


def test_intervals_are_seeded_and_cover_the_value(esconv_pairs):
    hyps, refs = esconv_pairs[0][:150], esconv_pairs[1][:150]
    a = basic().score_texts(hyps, refs, seed=0)
    b = basic().score_texts(hyps, refs, seed=0)
    c = basic().score_texts(hyps, refs, seed=1)
    assert a.intervals == b.intervals and a.intervals != c.intervals
    assert set(a.intervals) == set(a.corpus) - set(a.interval_notes) and set(a.interval_notes) == {"Dist-1", "Dist-2"}
    for key, value in a.intervals and {k: a.corpus[k] for k in a.intervals}.items():
        low, high = a.intervals[key]
        assert low <= value <= high, key
        assert high > low, key


def test_paired_same_system_and_better_system(esconv_pairs):
    hyps, refs = esconv_pairs[0][:150], esconv_pairs[1][:150]
    metric = SacreBleu()
    stats_a = metric.statistics(Batch(hyps, refs))
    stats_b = metric.statistics(Batch([r[0] if i % 2 else h for i, (h, r) in enumerate(zip(hyps, refs))], refs))
    counts = bootstrap.resample_counts(len(hyps), 300, seed=0)
    same = bootstrap.paired(metric, stats_a, stats_a, counts)["BLEU"]
    assert same.delta == 0 and same.low == 0 and same.high == 0 and same.p_value == 1.0
    better = bootstrap.paired(metric, stats_a, stats_b, counts)["BLEU"]
    assert better.delta > 0 and better.low > 0 and better.p_value < 0.01
