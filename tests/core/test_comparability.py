"""harness/comparability.py: a delta is printed only between comparable numbers, else the reason is."""
from __future__ import annotations

import json
import re

import pytest

from harness.cli import main
from harness.comparability import Side, check_published, check_runs, size_dependent_keys
from harness.rundir import RunResults, TaskResult, write_results
from leaderboards.published import load_published

SPT_PUBLISHED = next(e for e in load_published() if e.system == "OPT-125M-SPT")


def full_split(**changes) -> TaskResult:
    """Our ConvAI2 result on the full valid split, scored like SPT's table (percent unit)."""
    base = dict(task="convai2_persona", metrics={"F1": 12.0, "BLEU": 2.0, "Dist-1": 5.0, "ppl": 30.0},
                signature="profile:spt|lang:en|hyp:spt_cut|unit:percent", n_examples=7801, profile="spt",
                unit="percent", table_factor=1.0, language="en", protocol="default", options={"keep": False},
                default_options=True, data_sha256="a" * 64, data_counts={"dialogues": 1000, "turns": 15602},
                bundled_sample=False, limit=None)
    base.update(changes)
    return TaskResult(**base)


def table_lines(tmp_path, result: TaskResult, *flags: str, capsys) -> str:
    run = tmp_path / "run"
    write_results(run, RunResults("zero_shot_lm", {result.task: result}))
    assert main(["table", str(run), *flags]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("change, reason", [
    ({"bundled_sample": True}, "bundled synthetic sample"),
    ({"limit": 16, "n_examples": 16}, "only the first 16 examples (--limit)"),
    ({"protocol": "last"}, "protocol 'last'"),
    ({"default_options": False}, "changed task options"),
    ({"profile": "parlai"}, "profile 'parlai'"),
    ({"data_counts": {"dialogues": 200, "turns": 3094}, "n_examples": 1547}, "has 1000 dialogues, ours 200"),
])
def test_published_check_names_each_failure(change, reason):
    verdict = check_published(Side.from_result(full_split(**change), "ours"), Side.from_published(SPT_PUBLISHED))
    assert not verdict.comparable and reason in verdict.explain()


def test_published_check_passes_on_the_published_split_and_refuses_an_unrecorded_split():
    assert check_published(Side.from_result(full_split(), "ours"), Side.from_published(SPT_PUBLISHED)).comparable
    dialogpt = next(e for e in load_published() if e.system.startswith("DialoGPT"))
    verdict = check_published(Side.from_result(full_split(task="esconv_strategy", profile="nlgeval"), "ours"),
                              Side.from_published(dialogpt))
    assert "size is not recorded" in verdict.explain()


def test_run_check_refuses_other_data_protocol_options_and_limits():
    a = Side.from_result(full_split(), "A")
    assert check_runs(a, a).comparable
    for change, reason in [({"data_sha256": "b" * 64}, "test data differ"), ({"protocol": "last"}, "protocol differs"),
                           ({"options": {"keep": True}}, "task options differ (keep)"), ({"limit": 8}, "--limit differs"),
                           ({"profile": "basic"}, "metric profile differs")]:
        verdict = check_runs(a, Side.from_result(full_split(**change), "B"))
        assert reason in verdict.explain(), change


def test_delta_to_on_the_bundled_sample_prints_no_delta_and_says_why(tmp_path, capsys):
    text = table_lines(tmp_path, full_split(bundled_sample=True, n_examples=24), "--delta-to", "OPT-125M-SPT", capsys=capsys)
    delta = next(line for line in text.splitlines() if line.startswith("| Δ"))
    cells = [c.strip() for c in delta.strip("|").split("|")][1:]
    assert cells and not any(re.fullmatch(r"[+-]?\d+(\.\d+)?", c) for c in cells), delta  # no number in the delta row
    assert "ours is the bundled synthetic sample" in text


def test_delta_on_the_published_split_names_corpus_sizes_for_distinct(tmp_path, capsys):
    text = table_lines(tmp_path, full_split(), "--delta-to", "OPT-125M-SPT", capsys=capsys)
    delta = next(line for line in text.splitlines() if line.startswith("| Δ"))
    assert "+0.94" in delta and "-0.22" in delta  # F1 12.0 - 11.06 and BLEU 2.0 - 2.22 (percent: 2 decimals)
    assert "Dist-1 depends on corpus size: ours over 7801 examples, published over 7801 examples" in text
    assert size_dependent_keys("spt") == {"Dist-1", "Dist-2"}


def test_published_rows_hide_numbers_from_another_recipe(tmp_path, capsys):
    text = table_lines(tmp_path, full_split(), "--published", capsys=capsys)
    gpt = next(line for line in text.splitlines() if line.startswith("| GPT (transfer-learning-conv-ai)"))
    assert "20.5" not in gpt  # a parlai-profile perplexity does not sit under the spt table's ppl
    assert "ours used profile 'spt', published used 'parlai'" in text
    opt = next(line for line in text.splitlines() if line.startswith("| OPT-125M-SPT [published]"))
    assert "11.06" in opt


def test_compare_refuses_runs_with_another_protocol(tmp_path, capsys):
    for name, protocol in (("a", "default"), ("b", "last")):
        run = tmp_path / name
        write_results(run, RunResults("copy_last", {"esconv_strategy": full_split(task="esconv_strategy", profile="basic",
                                                                                  protocol=protocol)}))
        (run / "samples.jsonl").write_text(json.dumps({"task": "esconv_strategy", "example_id": "1", "output": "hi",
                                                       "references": ["hello"]}) + "\n")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "esconv_strategy  no deltas: task protocol differs (A: default, B: last)" in out and "Bleu_1" not in out
