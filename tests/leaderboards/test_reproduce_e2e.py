"""``dialbench reproduce`` end to end: every trained system of every paper recipe runs its tiny preset
(on the bundled samples: a smoke run), and a baseline recipe prints ours beside published numbers."""
from __future__ import annotations

import json

import pytest

from harness.cli import main
from leaderboards.paper_recipes import get_recipe, recipe_names

TRAINED = [(paper, s.name) for paper in recipe_names() for s in get_recipe(paper).systems if "tiny" in s.presets]


@pytest.mark.slow
@pytest.mark.parametrize("paper, system", TRAINED)
def test_tiny_preset_of_every_trained_recipe_system_runs(tmp_path, capsys, paper, system):
    out = tmp_path / paper
    assert main(["reproduce", paper, "--preset", "tiny", "--systems", system, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "reproduce.json").read_text())
    recipe = get_recipe(paper)
    assert (out / f"{system}-tiny" / "dialbench_training.json").is_file()  # trained through training.run
    compared = {(c.published, m) for t in recipe.tasks for c in t.compare for m in c.metrics}
    assert {(line["published_system"], line["metric"]) for line in result["lines"]} == compared
    assert all(line["ours"] is not None or line["match"].startswith("no:") for line in result["lines"])
    assert "bundled synthetic sample" in printed and "| recipe match" in printed
    assert 'data-kind="ours-vs-published"' in (out / "reproduce.html").read_text()


@pytest.mark.slow
def test_baseline_recipe_withholds_deltas_on_other_data_and_other_recipes(tmp_path, capsys, shared_data):
    out = tmp_path / "multiesc"
    data = shared_data / "esconv" / "valid.txt"
    code = main(["reproduce", "multiesc", "--systems", "copy_last", "--data", f"esconv_strategy={data}",
                 "--output", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    # valid.txt has as many dialogues as MultiESC's test split (195), but not its 4752 turns
    assert "4467 turns (the paper's data has 4752)" in captured.err
    lines = json.loads((out / "reproduce.json").read_text())["lines"]
    multiesc = {l["metric"]: l for l in lines if l["published_system"] == "MultiESC"}
    # valid.txt is not MultiESC's 195-dialogue test split: comparability withholds the delta and says why
    assert multiesc["Bleu_2"]["delta"] is None and "MultiESC test.txt has 4752 turns, ours 4467" in multiesc["Bleu_2"]["match"]
    assert multiesc["Bleu_2"]["ours"] is not None and multiesc["Bleu_2"]["published"] == 9.18
    dialogpt = [l for l in lines if l["published_system"].startswith("DialoGPT")]
    assert dialogpt and all(l["delta"] is None and "original ESConv split" in l["match"] for l in dialogpt)
    assert "| Bleu_2 " in captured.out and "–" in captured.out
