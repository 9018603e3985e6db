"""Profiles: the runner's interface, switches in signatures, inputs that make metrics not applicable,
Chinese character tokenisation, hypothesis post-processing, memory metrics."""
from __future__ import annotations

import dataclasses

import math

import pytest

from harness.errors import UserError
from harness.metrics import get_profile, profile_names
from harness.metrics.memory import memory_items
from harness.metrics.signature import parse
from harness.metrics.text import Tokenizer, char_tokens, magic_postprocess, nltk_tokens, spt_cut
from harness.records import Example, Response


def make(refs, texts, **kw):
    examples = [Example(str(i), "t", "d", (), tuple(r), label=kw.get("gold", [None] * len(refs))[i],
                        meta=kw.get("meta", [{}] * len(refs))[i]) for i, r in enumerate(refs)]
    responses = [Response(str(i), t, label=kw.get("pred", [None] * len(texts))[i],
                          retrieved=kw.get("retrieved", [()] * len(texts))[i],
                          ref_nll=kw.get("nll", [None] * len(texts))[i], ref_tokens=kw.get("ntok", [None] * len(texts))[i])
                 for i, t in enumerate(texts)]
    return examples, responses


def test_names_and_unknown_profile():
    assert {"nlgeval", "spt", "parlai", "memorybank", "dolphin", "basic"} <= set(profile_names())
    with pytest.raises(UserError, match=r"unknown metric profile 'nlgevl' \(did you mean 'nlgeval'\?\).*valid choices"):
        get_profile("nlgevl")
    with pytest.raises(UserError, match="bogus"):
        get_profile("basic", bogus=1)


def test_runner_contract_with_labels_and_perplexity():
    examples, responses = make([["i see ."], ["tell me more ."], ["that is hard ."]],
                               ["i see .", "tell me", "ok"], gold=["Question", "Reflection", "Question"],
                               pred=["Question", "Question", "Question"], nll=[2.0, 4.0, 6.0], ntok=[2, 3, 1])
    report = get_profile("basic").score(examples, responses, language="en")
    assert len(report.per_example) == 3
    # corpus Distinct-n depends on corpus size: no bootstrap interval, a note saying why instead
    assert set(report.intervals) == set(report.corpus) - {"Dist-1", "Dist-2"}
    assert {"Dist-1", "Dist-2"} <= set(report.interval_notes)
    assert report.corpus["ppl"] == pytest.approx(math.exp(12.0 / 6))
    assert report.per_example[0]["ppl"] == pytest.approx(math.exp(1.0))
    assert report.corpus["accuracy"] == pytest.approx(2 / 3)
    assert report.corpus["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)  # Question P=2/3 R=1; Reflection 0
    assert report.per_example[1]["accuracy"] == 0.0
    assert report.not_applicable == {}
    assert report.table_values()["Bleu_1"] == pytest.approx(100 * report.corpus["Bleu_1"])
    assert report.table_values()["ppl"] == report.corpus["ppl"]
    from harness.metrics import table_scale

    assert table_scale(report.signature, "Bleu_1") == 100.0 and table_scale(report.signature, "ppl") == 1.0
    assert table_scale("profile:spt|lang:en", "BLEU") == 1.0


def test_not_applicable_reasons():
    examples, responses = make([["a b"], []], ["a b", "c"], nll=[1.0, None], ntok=[1, None])
    report = get_profile("basic").score(examples, responses)
    assert report.not_applicable["Bleu_1"] == "1 of 2 examples have no reference text"
    assert "log-likelihoods" in report.not_applicable["ppl"]
    assert "accuracy" not in report.not_applicable and "accuracy" not in report.corpus  # no labels at all: left out
    labelled, _ = make([["a b"], ["c"]], ["a b", "c"])
    labelled = [labelled[0], dataclasses.replace(labelled[1], label="Question")]
    partial = get_profile("basic").score(labelled, responses)
    assert partial.not_applicable["accuracy"] == "1 of 2 examples have no gold label"
    assert "Dist-1" in report.corpus  # needs no references
    empty = get_profile("basic").score([], [])
    assert empty.corpus == {} and set(empty.not_applicable.values()) == {"no examples"}


def test_switches_flow_into_signature():
    sigs = {name: get_profile(name).score_texts(["Hello there."], [["hello there ."]]).signature
            for name in ("basic", "parlai")}
    assert parse(sigs["basic"])["profile"] == "basic" and parse(sigs["parlai"])["lang"] == "en"
    assert "norm:parlai" in sigs["parlai"] and "dist:corpus" in sigs["parlai"]
    zh = get_profile("basic").score_texts(["你好"], [["你好"]], language="zh").signature
    assert parse(zh)["lang"] == "zh" and "tok:char" in zh
    magic = get_profile("nlgeval_magic")
    assert magic.prepare_hypothesis('I see..."Really"!!') == "I see .Really !"  # quotes dropped, no space added
    assert get_profile("nlgeval", magic=True).name == "nlgeval_magic"


def test_text_helpers():
    assert char_tokens("我喜欢NLP模型，真的！ ok") == ["我", "喜", "欢", "NLP", "模", "型", "，", "真", "的", "！", "ok"]
    assert Tokenizer("char-nopunct")("我喜欢，你！") == ["我", "喜", "欢", "你"]
    assert spt_cut("i love dogs. R: and you? Q: x") == "i love dogs."
    assert spt_cut("yes: really") == "yes"
    assert magic_postprocess("hi!! how are you.. fine") == "hi ! how are you . fine"
    assert nltk_tokens("i understand. that's hard!") == ["i", "understand", ".", "that", "'s", "hard", "!"]
    assert nltk_tokens("i understand. ok", split_sentences=False) == ["i", "understand.", "ok"]


def test_chinese_character_level_scores():
    report = get_profile("dolphin").score_texts(["我喜欢猫"], [["我喜欢狗"]], language="zh", resamples=0)
    assert report.corpus["BLEU-1"] == pytest.approx(0.75, abs=1e-6)  # 3 of 4 characters
    assert report.corpus["F1"] == pytest.approx(0.75)
    assert report.corpus["Dist-1"] == 1.0


def test_memorybank_metrics():
    meta = [{"evidence": ("2023-05-01#0", "2023-05-02#1"), "keywords": ("北京", "猫")}, {"evidence": (), "keywords": ()}]
    examples, responses = make([["你住在北京"], ["不知道"]], ["你住在北京，还养了一只猫。", "我不知道"], meta=meta,
                               retrieved=[("2023-05-02#1", "2023-05-03#0", "2023-05-01#0"), ()])
    report = get_profile("memorybank").score(examples, responses, language="zh")
    assert report.corpus["evidence_recall@1"] == pytest.approx(0.5)  # only the first question has gold evidence
    assert report.corpus["evidence_recall@3"] == pytest.approx(1.0)
    assert report.corpus["keyword_recall"] == pytest.approx(1.0)
    assert 0 < report.corpus["answer_f1"] < 1
    assert "signature" not in report.corpus and "evidence:recall@1,3,5" in report.signature


def test_fact_recall_items_and_threshold():
    assert memory_items("【喜欢猫】【住在北京】|工作是老师") == ["喜欢猫", "住在北京", "工作是老师"]
    report = get_profile("dolphin").score_texts(["用户住在北京，喜欢猫。"], [["【喜欢猫】【住在北京】|工作是老师"]],
                                                language="zh", resamples=0)
    assert report.corpus["fact_recall"] == pytest.approx(2 / 3)
    en = get_profile("dolphin").score_texts(["She teaches math | likes cats"], [["likes cats | teaches math | lives in Paris"]])
    assert en.corpus["fact_recall"] == pytest.approx(2 / 3)


def test_spt_profile_cut_f1_and_bertscore():
    from harness.metrics.bertscore import default_model

    profile = get_profile("spt", bertscore=default_model() is not None)
    report = profile.score_texts(["i love dogs R: extra text", "hello"], [["i love dogs"], ["hello"]], resamples=0)
    assert report.corpus["F1"] == pytest.approx(100.0)  # the cut removed "R: extra text"
    assert report.corpus["ROUGE-L"] == pytest.approx(100.0)
    if default_model() is not None:
        assert report.corpus["BERT-F1"] == pytest.approx(100.0, abs=1e-3)
        assert "all-MiniLM-L6-v2_L6_no-idf" in report.signature
    assert parse(report.signature)["unit"] == "percent"
