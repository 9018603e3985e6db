"""The spt profile's exact-reproduction switches: ROUGE bootstrap median, single-space Distinct, BERTScore by name."""
from __future__ import annotations

import numpy as np
import pytest

from harness.errors import UserError
from harness.metrics import get_profile
from harness.metrics.bertscore import BertScore
from harness.metrics.signature import parse

HYPS = ["i like to ski in the winter", "my dog is named max", "i work as a nurse at night", "hello there", "yes",
        "i have two cats and a dog", "what do you do for fun", "i am a teacher in a small town"]
REFS = [["i love skiing every winter"], ["my cat is called max"], ["i am a night nurse"], ["hi how are you"], ["no"],
        ["i have a dog and two cats"], ["what do you like to do"], ["i teach at a school"]]


def test_authors_single_space_split_for_distinct() -> None:
    hyps, refs = ["a b", "a b", ": x"], [["a"], ["b"], ["c"]]
    authors = get_profile("spt", bertscore=False, distinct_split="space").score_texts(hyps, refs, resamples=0)
    ours = get_profile("spt", bertscore=False).score_texts(hyps, refs, resamples=0)
    assert authors.corpus["Dist-1"] == pytest.approx(60.0)  # ": x" is cut to "", which splits into one empty token
    assert ours.corpus["Dist-1"] == pytest.approx(50.0)
    assert "tok:space" in authors.signature and "tok:whitespace" in ours.signature
    with pytest.raises(UserError):
        get_profile("spt", distinct_split="tabs")


def test_rouge_bootstrap_median_is_seeded_and_matches_rouge_score_aggregator() -> None:
    from rouge_score.rouge_scorer import RougeScorer
    from rouge_score.scoring import BootstrapAggregator

    before = np.random.get_state()[1].copy()
    report = get_profile("spt", bertscore=False, rouge_aggregate="bootstrap_median", rouge_seed=7).score_texts(HYPS, REFS, resamples=0)
    assert np.array_equal(np.random.get_state()[1], before)  # the global state is left as it was
    again = get_profile("spt", bertscore=False, rouge_aggregate="bootstrap_median", rouge_seed=7).score_texts(HYPS, REFS, resamples=0)
    mean = get_profile("spt", bertscore=False).score_texts(HYPS, REFS, resamples=0)
    # HF evaluate('rouge') with its default aggregator, made deterministic by seeding numpy's global state
    scorer, aggregator = RougeScorer(["rouge1", "rouge2", "rougeL"]), BootstrapAggregator()
    for hyp, (ref,) in zip(HYPS, REFS):
        aggregator.add_scores(scorer.score(ref, hyp))
    np.random.seed(7)
    expected = aggregator.aggregate()
    for key, rouge_type in (("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeL")):
        assert report.corpus[key] == pytest.approx(expected[rouge_type].mid.fmeasure * 100, abs=1e-9)
        assert again.corpus[key] == report.corpus[key]
    plain = np.mean([scorer.score(ref, hyp)["rouge1"].fmeasure for hyp, (ref,) in zip(HYPS, REFS)]) * 100
    assert mean.corpus["ROUGE-1"] == pytest.approx(plain)
    assert report.corpus["ROUGE-1"] != pytest.approx(plain, abs=1e-9)
    assert "agg:bootstrap_median-n1000-seed7" in report.signature and "maxref-mean" in mean.signature
    with pytest.raises(UserError):
        get_profile("spt", rouge_aggregate="median")


def test_bertscore_model_by_name_enters_the_signature() -> None:
    deberta = BertScore("microsoft/deberta-xlarge-mnli", None)
    assert deberta.layers() == 40
    assert "microsoft/deberta-xlarge-mnli_L40_no-idf" in deberta.describe()
    assert BertScore(None, None).layers() == 6
    assert "all-MiniLM-L6-v2_L6" in BertScore(None, None).describe()
    profile = get_profile("spt", bertscore_model="microsoft/deberta-xlarge-mnli")
    signature = "|".join(m.describe() for m in profile.metrics)
    assert "deberta-xlarge-mnli_L40" in signature
    unknown = BertScore("/models/my-bert", None)
    assert unknown.layers() is None
    assert parse("profile:spt|unit:percent")["unit"] == "percent"


def test_switches_from_the_command_line_spelling(tmp_path, capsys) -> None:
    """``--profile TASK=spt:KEY=VALUE,...`` (run, eval) and ``score --profile spt:...`` reach the same switches."""
    from harness.cli import main

    written = get_profile("spt:bertscore=false,distinct_split=space,rouge_aggregate=bootstrap_median,rouge_seed=7")
    assert written.options == get_profile("spt", bertscore=False, distinct_split="space",
                                          rouge_aggregate="bootstrap_median", rouge_seed=7).options
    for bad, message in [("spt:distinct=space", "has no option 'distinct'"), ("spt:bertscore=maybe", "not a bool"),
                         ("spt:rouge_seed", "not KEY=VALUE"), ("parlai:x=1", "it takes none")]:
        with pytest.raises(UserError, match=message):
            get_profile(bad)
    hyps, refs = tmp_path / "h.txt", tmp_path / "r.txt"
    hyps.write_text("a b\na b\n: x\n", encoding="utf-8")
    refs.write_text("a\nb\nc\n", encoding="utf-8")
    assert main(["score", "--hypotheses", str(hyps), "--references", str(refs), "--json", "--resamples", "0",
                 "--profile", "spt:bertscore=false,distinct_split=space"]) == 0
    import json

    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["Dist-1"] == pytest.approx(60.0) and "tok:space" in out["signature"]
