"""One bootstrap construction per comparison: intervals and p-values agree and stay in range.

Checked over every metric of every profile on random and on degenerate data, and on the
16-32-example runs that once printed Dist-2 [-149.76, -49.76] and BLEU intervals excluding 0 with
p = 0.32 (rebuilt from the bundled samples with the model-free baselines).
"""
from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest

from harness.metrics import bootstrap, get_profile, profile_names
from harness.metrics.base import Batch
from harness.records import Example, Response

N, RESAMPLES = 32, 400
GRANULARITY = 2.5 / RESAMPLES  # p-values move in steps of ~1/R


def _upper_bound(profile, key: str) -> float:
    """Return the largest value a metric of ``profile`` can take in its stored unit."""
    if key == "ppl":
        return math.inf
    top = 100.0 if profile.unit == "percent" else 1.0
    return top * 10 if key.startswith("CIDEr") else top


def _lower_bound(key: str) -> float:
    return 1.0 if key == "ppl" else 0.0


def _data(seed: int, degenerate: bool, language: str):
    rng = random.Random(seed)
    words = list("的是我你他好在有人") if language == "zh" else "i you the a cat dog is was happy sad very not".split()
    join = "" if language == "zh" else " "
    hyps = ["." if degenerate and i else ("" if degenerate else join.join(rng.choice(words) for _ in range(rng.randint(1, 9))))
            for i in range(N)]
    refs = [join.join(rng.choice(words) for _ in range(rng.randint(2, 9))) + (" | " + rng.choice(words)) * (i % 2)
            for i in range(N)]
    ids = [f"2023-05-0{1 + i % 5}#{i % 3}" for i in range(N)]
    examples = [Example(str(i), "t", f"d{i // 4}", (), (refs[i],), label=rng.choice("xyz"),
                        meta={"evidence": (ids[i],), "keywords": (rng.choice(words),)}) for i in range(N)]
    responses = [Response(str(i), hyps[i], label="x" if degenerate else rng.choice("xyz"),
                          retrieved=() if degenerate and i else tuple(rng.sample(ids, 5)),
                          ref_nll=rng.uniform(1, 30), ref_tokens=rng.randint(1, 10)) for i in range(N)]
    return hyps, [[r] for r in refs], examples, responses


HEAVY = ("MeteorJar", "BertScore")
"""Metrics whose tools take a minute to start on a shared CPU (a JVM, a BERT model): slow test only."""


def _statistics(heavy: bool):
    """Return {(profile, case): (profile, stats_a, stats_b)} for every profile on random and degenerate data."""
    out = {}
    for name in profile_names():
        profile = get_profile(name)
        if not heavy:
            profile = dataclasses.replace(profile, metrics=tuple(m for m in profile.metrics if type(m).__name__ not in HEAVY))
        language = "zh" if name in ("dolphin", "memorybank") else "en"
        for case, degenerate in (("random", False), ("degenerate", True)):
            pair = []
            for seed in (1, 2):
                hyps, refs, examples, responses = _data(seed, degenerate and seed == 2, language)
                stats, _ = profile.statistics(profile.batch(hyps, refs, language, examples, responses))
                pair.append({id(m): (m, s) for m, s in stats})
            out[(name, case)] = (profile, pair[0], pair[1])
        profile.close()
    return out


@pytest.fixture(scope="module")
def statistics():
    return _statistics(heavy=False)


def _check_single_intervals(statistics, case: str) -> None:
    counts = bootstrap.resample_counts(N, RESAMPLES, seed=0)
    for (name, kind), (profile, stats_a, _) in statistics.items():
        if kind != case:
            continue
        for metric, stats in stats_a.values():
            found = bootstrap.intervals(metric, stats, counts)
            if bootstrap.unavailable_reason(metric):
                assert found == {} and metric.size_dependent
                continue
            for key, (low, high) in found.items():
                if math.isnan(low):
                    continue
                assert _lower_bound(key) - 1e-9 <= low <= high <= _upper_bound(profile, key) + 1e-9, (name, key, low, high)


def _check_paired(statistics, case: str) -> int:
    counts = bootstrap.resample_counts(N, RESAMPLES, seed=0)
    checked = 0
    for (name, kind), (profile, stats_a, stats_b) in statistics.items():
        if kind != case:
            continue
        for key_id, (metric, sa) in stats_a.items():
            _, sb = stats_b[key_id]
            for key, r in bootstrap.paired(metric, sa, sb, counts).items():
                if metric.size_dependent:
                    assert math.isnan(r.low) and "corpus size" in r.note
                    continue
                if math.isnan(r.low):
                    continue
                span = _upper_bound(profile, key) - _lower_bound(key)
                assert -span - 1e-9 <= r.low <= r.high <= span + 1e-9, (name, key, r)
                excludes_zero = r.low > 0 or r.high < 0
                assert not excludes_zero or r.p_value <= 0.05 + GRANULARITY, (name, key, r)
                assert not r.p_value < 0.05 - GRANULARITY or excludes_zero or r.low == 0 or r.high == 0, (name, key, r)
                checked += 1
    return checked


@pytest.mark.parametrize("case", ["random", "degenerate"])
def test_single_intervals_stay_in_range_or_say_why_not(statistics, case):
    _check_single_intervals(statistics, case)


@pytest.mark.parametrize("case", ["random", "degenerate"])
def test_paired_interval_and_p_value_agree_and_stay_in_range(statistics, case):
    assert _check_paired(statistics, case) > 20


@pytest.mark.slow
def test_every_metric_of_every_profile_including_jvm_and_bert_metrics():
    statistics = _statistics(heavy=True)
    for name in profile_names():
        profile, stats_a, _ = statistics[(name, "random")]
        assert {id(m) for m in profile.metrics} == set(stats_a), f"{name}: a metric was not computed"
    for case in ("random", "degenerate"):
        _check_single_intervals(statistics, case)
        _check_paired(statistics, case)


def test_the_contradicting_small_runs_now_agree(tmp_path):
    """copy_last vs retrieval on the bundled ConvAI2 and ESConv samples (16-32 examples each)."""
    from harness.commands.compare import compare_task, load_run
    from harness.runner import SystemSpec, TaskSpec, run_system

    # Scored quickly with "basic" here; compare re-scores the samples with the profile it is given.
    tasks = [TaskSpec("convai2_persona", profile="basic"), TaskSpec("esconv_strategy", profile="basic")]
    for system in ("copy_last", "retrieval"):
        run_system(SystemSpec(system), tasks, tmp_path / system, command=["t"])
    rows_a, _ = load_run(str(tmp_path / "copy_last"))
    rows_b, _ = load_run(str(tmp_path / "retrieval"))
    for task, profile in (("convai2_persona", "spt"), ("esconv_strategy", "basic")):
        assert 8 <= len(rows_a[task]) <= 64
        report = compare_task(task, rows_a[task], rows_b[task], get_profile(profile).with_options(bertscore=False)
                              if profile == "spt" else profile, "en", resamples=RESAMPLES, seed=0)
        for key, r in report["metrics"].items():
            if key.startswith(("Dist", "interdistinct")):
                assert r["low"] is None or math.isnan(r["low"]), key
                assert "corpus size" in r["note"] and f"{report['n']} examples" in r["note"]
                continue
            if r["low"] is None or math.isnan(r["low"]):
                continue
            bound = 100.0 if profile == "spt" and key != "ppl" else (1.0 if key != "ppl" else math.inf)
            assert -bound <= r["low"] <= r["high"] <= bound, key
            if r["low"] > 0 or r["high"] < 0:
                assert r["p_value"] <= 0.05 + GRANULARITY, (task, key, r)
            if r["p_value"] < 0.05 - GRANULARITY:
                assert r["low"] >= 0 or r["high"] <= 0, (task, key, r)
