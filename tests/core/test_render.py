"""Leaderboard rendering: rows systems, columns metrics, grouped by task, footnoted empty cells."""
from __future__ import annotations

import csv
import io
import json

import pytest

from harness.errors import UserError
from harness.jsonio import write_json
from leaderboards.render import render_table


def make_run(path, system, results, not_applicable=None, model=None):
    write_json(path / "results.json", {
        "system": system, "results": results, "not_applicable": not_applicable or {},
        "signatures": {t: f"profile:test|unit:percent|task:{t}" for t in results}, "n_examples": {t: 3 for t in results},
    })
    write_json(path / "config.json", {"system": {"name": system, "options": {"model": model} if model else {}}})
    return path


@pytest.fixture
def runs(tmp_path):
    a = make_run(tmp_path / "a", "copy_last", {"convai2_persona": {"f1": 5.0, "ppl": None}, "esconv_strategy": {"Bleu_1": 0.25}},
                 not_applicable={"convai2_persona": {"ppl": "system gives no log-likelihoods"}})
    b = make_run(tmp_path / "b", "zero_shot_lm", {"convai2_persona": {"f1": 12.345, "ppl": 30.0}}, model="tiny")
    return [a, b]


def test_markdown_groups_by_task_and_footnotes_empty_cells(runs):
    text = render_table(runs, fmt="md")
    assert text.index("### esconv_strategy") < text.index("### convai2_persona")  # registry order
    convai2 = text.split("### convai2_persona")[1]
    assert "| copy_last" in convai2 and "| zero_shot_lm (tiny)" in convai2
    assert "12.35" in convai2 and "30.00" in convai2
    assert "[1] ppl: system gives no log-likelihoods" in text
    copy_row = next(line for line in convai2.splitlines() if line.startswith("| copy_last"))
    assert "[1]" in copy_row


def test_csv_and_json_are_flat_with_a_task_column(runs):
    rows = list(csv.DictReader(io.StringIO(render_table(runs, fmt="csv"))))
    assert {(r["task"], r["system"]) for r in rows} == {
        ("convai2_persona", "copy_last"), ("convai2_persona", "zero_shot_lm (tiny)"), ("esconv_strategy", "copy_last")}
    assert float(next(r for r in rows if r["system"] == "zero_shot_lm (tiny)")["f1"]) == pytest.approx(12.35)  # the one formatting rule: 2 decimals for percent
    data = json.loads(render_table(runs, fmt="json"))
    assert {d["task"] for d in data} == {"convai2_persona", "esconv_strategy"}


def test_latex_renders_booktabs(runs):
    text = render_table(runs, fmt="latex")
    assert "\\toprule" in text and "% convai2_persona" in text


def test_missing_run_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="results.json: file not found"):
        render_table([tmp_path / "nope"], fmt="md")


def test_published_rows_and_deltas_only_where_recipes_match(tmp_path):
    run = make_run(tmp_path / "spt", "zero_shot_lm", {"convai2_persona": {"F1": 0.2, "BLEU": 3.0, "BERT-F1": 50.0}})
    results = json.loads((run / "results.json").read_text())
    results["signatures"]["convai2_persona"] = "profile:spt|unit:percent|bertscore:all-MiniLM-L6-v2"
    results["n_examples"]["convai2_persona"] = 7801  # the full ConvAI2 valid split, as the published rows
    results["tasks"] = {"convai2_persona": {"profile": "spt", "unit": "percent", "table_factor": 1.0, "protocol": "default",
                                            "default_options": True, "bundled_sample": False, "data_sha256": "ab",
                                            "data_counts": {"dialogues": 1000, "turns": 15602}}}
    (run / "results.json").write_text(json.dumps(results))
    text = render_table([run], fmt="md", delta_to="OPT-125M-SPT")
    delta = next(line for line in text.splitlines() if line.startswith("| Δ zero_shot_lm"))
    cells = [c.strip() for c in delta.strip("|").split("|")]
    assert cells[1] == "-10.86"  # F1 0.2 - 11.06 (a percent-unit profile is not rescaled)
    assert cells[2] == "+0.78"  # BLEU 3.0 - 2.22 (percent column: 2 decimals)
    assert cells[3].startswith("[")  # BERT-F1 used another model: footnoted, not subtracted
    assert "not comparable: published used microsoft/deberta-xlarge-mnli" in text
    assert "| OPT-125M-SPT [published]" in text and "| Llama2-7B-SPT [published]" in text


def test_delta_to_unknown_published_system_lists_choices(runs):
    with pytest.raises(UserError, match="valid choices: .*OPT-125M-SPT"):
        render_table(runs, fmt="md", delta_to="GPT-5")


def test_one_formatting_rule_fixed_decimals_per_column_by_unit(tmp_path):
    """A column never mixes 0.0000 and 7.30: decimals come from the unit shown, not the value."""
    from leaderboards.numbers import format_number

    run = make_run(tmp_path / "fmt", "copy_last", {"esconv_strategy": {"Bleu_1": 0.073, "Bleu_4": 0.0000016, "ppl": 42.2149}})
    results = json.loads((run / "results.json").read_text())
    results["signatures"]["esconv_strategy"] = "profile:nlgeval|unit:fraction"  # x100 in tables
    (run / "results.json").write_text(json.dumps(results))
    row = next(line for line in render_table([run], fmt="md").splitlines() if line.startswith("| copy_last"))
    assert [c.strip() for c in row.strip("|").split("|")][1:4] == ["7.30", "0.00", "42.21"]
    raw = next(line for line in render_table([run], fmt="md", raw=True).splitlines() if line.startswith("| copy_last"))
    assert [c.strip() for c in raw.strip("|").split("|")][1:4] == ["0.0730", "0.0000", "42.21"]
    csv_row = next(csv.DictReader(io.StringIO(render_table([run], fmt="csv"))))
    assert (csv_row["Bleu_1"], csv_row["Bleu_4"]) == ("7.30", "0.00")
    assert format_number(0.5, "percent", signed=True) == "+0.50" and format_number(-0.5, "fraction") == "-0.5000"
