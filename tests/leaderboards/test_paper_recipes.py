"""Paper recipes: the bundled ones load; a bad one is rejected naming the file and the field."""
from __future__ import annotations

import copy
import json

import pytest

from harness.errors import UserError
from leaderboards.paper_recipes import RECIPES_DIR, get_recipe, load_recipe, recipe_names

GOOD = json.loads((RECIPES_DIR / "multiesc.json").read_text(encoding="utf-8"))


def test_every_bundled_recipe_validates():
    assert {"gpt2_dialogue", "multiesc", "convai2_baselines"} <= set(recipe_names())
    for name in recipe_names():
        recipe = get_recipe(name)
        assert recipe.paper == name and recipe.tasks and recipe.systems


def write(tmp_path, data, name="multiesc"):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, field, message", [
    (lambda d: d["tasks"][0].update(task="esconv_strategyy"), "tasks[0].task", "unknown task 'esconv_strategyy'"),
    (lambda d: d["tasks"][0]["compare"][0]["metrics"].append("BLEURT"), "tasks[0].compare[0].metrics[8]", "BLEURT"),
    (lambda d: d["tasks"][0]["compare"][0].update(published="MultiESC-XL"), "tasks[0].compare[0].published", "MultiESC-XL"),
    (lambda d: d["systems"][0].update(name="gpt5"), "systems[0].name", "unknown system 'gpt5'"),
    (lambda d: d["tasks"][0].update(profile="bleurt"), "tasks[0].profile", "bleurt"),
    (lambda d: d["tasks"][0].update(protocol="first"), "tasks[0].protocol", "first"),
    (lambda d: d["tasks"][0]["data"]["expected"].update(utterances=3), "tasks[0].data.expected.utterances", "integer count"),
    (lambda d: d.update(colour="red"), "colour", "unknown field"),
    (lambda d: d.pop("title"), "title", "missing"),
])
def test_bad_recipe_names_file_and_field(tmp_path, edit, field, message):
    data = copy.deepcopy(GOOD)
    edit(data)
    with pytest.raises(UserError) as err:
        load_recipe(write(tmp_path, data))
    text = str(err.value)
    assert text.startswith(f"multiesc.json: {field}: ") and message in text and "\n" not in text


def test_metric_the_profile_does_not_report_is_rejected(tmp_path):
    data = copy.deepcopy(GOOD)
    data["tasks"][0]["profile"] = "parlai"  # MultiESC's Bleu_2 is not a parlai key
    with pytest.raises(UserError, match=r"multiesc.json: tasks\[0\].compare\[0\].metrics\[2\]: profile 'parlai' does not report 'Bleu_2'"):
        load_recipe(write(tmp_path, data))


def test_file_name_must_match_paper(tmp_path):
    with pytest.raises(UserError, match="multiesc2.json: paper: 'multiesc' must equal the file name"):
        load_recipe(write(tmp_path, GOOD, name="multiesc2"))


def test_unknown_paper_lists_the_recipes():
    with pytest.raises(UserError, match="gpt2_dialogue"):
        get_recipe("spt-v9")


def test_count_mismatch_is_one_line(capsys):
    from harness.commands.reproduce import check_counts
    from harness.plugins import TASKS

    task = get_recipe("multiesc").tasks[0]
    sample = TASKS.get("esconv_strategy")().sample_path("test")
    note = check_counts(task, sample)
    assert "(the paper's data has 195)" in note and "not on the paper's data" in note and "\n" not in note
    assert capsys.readouterr().err.count("\n") == 1


def test_list_names_every_recipe_with_its_needs():
    from harness.commands.reproduce import list_recipes

    text = list_recipes()
    for name in recipe_names():
        assert f"| {name} " in text
    assert "GPU" in text and "tiny on 2 CPU cores" in text and "embedded SmolLM2" in text
