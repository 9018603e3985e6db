"""The reproduce table: a delta only where recipes match; otherwise the published number with a reason."""
from __future__ import annotations

from harness.rundir import TaskResult
from leaderboards.paper_recipes import Comparison
from leaderboards.published import load_published
from leaderboards.rows import RunRow
from leaderboards.reproduce_table import compare_rows, render_markdown

ENTRIES = {(e.task, e.system): e for e in load_published()}


def ours(profile="nlgeval", dialogues=195):
    """Our row as the renderer gives it (paper units), with the facts results.json records for it:
    MultiESC's protocol and a data file of ``dialogues`` dialogues (195 and 4752 turns = MultiESC test)."""
    signature = f"profile:{profile}|unit:fraction"
    result = TaskResult(task="esconv_strategy", metrics={"Bleu_2": 0.0203, "ROUGE_L": 0.1257}, signature=signature,
                        not_applicable={"ppl": "system gives no log-likelihoods"}, n_examples=900, profile=profile,
                        unit="fraction", table_factor=100.0, protocol="last", options={}, default_options=True,
                        data_counts={"dialogues": dialogues, "turns": 4752}, bundled_sample=False)
    return RunRow(task="esconv_strategy", system="copy_last", run_dir="runs/x", result=result,
                  metrics={"Bleu_2": 2.03, "ROUGE_L": 12.57}, not_applicable=dict(result.not_applicable),
                  signature=signature, units={"Bleu_2": "percent", "ROUGE_L": "percent", "ppl": "ppl"})


def test_matching_recipe_gets_a_delta():
    lines = compare_rows([ours()], Comparison("MultiESC", ("Bleu_2",)), ENTRIES[("esconv_strategy", "MultiESC")], None)
    assert len(lines) == 1 and lines[0].match == "yes"
    assert abs(lines[0].delta - (2.03 - 9.18)) < 1e-9 and lines[0].published == 9.18


def test_other_profile_different_recipe_human_judged_and_missing_values_get_no_delta():
    entry = ENTRIES[("esconv_strategy", "MultiESC")]
    other = compare_rows([ours("basic")], Comparison("MultiESC", ("Bleu_2",)), entry, None)[0]
    assert other.delta is None and "profile 'basic'" in other.match
    smaller = compare_rows([ours(dialogues=20)], Comparison("MultiESC", ("Bleu_2",)), entry, None)[0]
    assert smaller.delta is None and "has 195 dialogues, ours 20" in smaller.match and smaller.published == 9.18
    dialogpt = ENTRIES[("esconv_strategy", "DialoGPT (ESConv paper, vanilla)")]
    lines = compare_rows([ours()], Comparison(dialogpt.system, ("ROUGE_L", "ppl"), different_recipe="original split"), dialogpt, None)
    assert [(l.delta, l.match) for l in lines] == [(None, "no: original split"), (None, "no: original split")]
    missing = compare_rows([ours()], Comparison(dialogpt.system, ("ppl",)), dialogpt, None)[0]
    assert missing.delta is None and missing.match == "no: system gives no log-likelihoods" and missing.published == 15.51
    human = compare_rows([ours()], Comparison("SiliconFriend", ("correctness",), human_judged=True), None, {"correctness": 0.438})[0]
    assert human.delta is None and "judged by humans" in human.match and human.published == 0.438


def test_markdown_shows_notes_and_a_dash_for_no_delta():
    entry = ENTRIES[("esconv_strategy", "MultiESC")]
    lines = compare_rows([ours()], Comparison("MultiESC", ("Bleu_2", "ROUGE_L")), entry, None)
    lines += compare_rows([ours("basic")], Comparison("MultiESC", ("Bleu_2",)), entry, None)
    text = render_markdown(lines, {"esconv_strategy": ["esconv_strategy: x.txt has 20 dialogues (the paper's data has 195)"]})
    assert "> esconv_strategy: x.txt has 20 dialogues" in text
    assert "| Bleu_2   | copy_last | MultiESC    | 2.03         | 9.18              | -7.15 | yes" in text
    other = next(line for line in text.splitlines() if "profile 'basic'" in line)
    assert [c.strip() for c in other.strip("|").split("|")][5] == "–"
