"""Exact counts on the real public files in ../shared/data (skipped when the folder is absent)."""
from __future__ import annotations

from harness.commands.data import inspect_data
from harness.plugins import TASKS


def test_esconv_valid_counts(shared_data):
    path = shared_data / "esconv" / "valid.txt"
    counts = inspect_data("esconv_strategy", path)
    assert (counts["dialogues"], counts["turns"], counts["examples"]) == (195, 4467, 2156)
    assert inspect_data("esconv_strategy", path, protocol="last")["examples"] == 195


def test_esconv_examples_follow_magic(shared_data):
    task = TASKS.get("esconv_strategy")()
    examples = task.build_examples(task.load(shared_data / "esconv" / "valid.txt"))
    first = examples[0]  # d0 starts with a sys greeting: the first target is index 2
    assert first.id == "d0:2" and first.inputs["response_memory"] == (first.context[0].text,)
    assert all(len(e.inputs["response_memory"]) == sum(t.speaker == "bot" for t in e.context) for e in examples)
    assert {e.label for e in examples} <= set(task.strategies)


def test_esconv_strategy_names_file_matches_the_set(shared_data):
    import json

    names = [n.strip("[]") for n in json.loads((shared_data / "esconv" / "strategies.json").read_text())]
    assert sorted(names) == sorted(TASKS.get("esconv_strategy")().strategies)


def test_personachat_head200_counts(shared_data):
    counts = inspect_data("convai2_persona", shared_data / "personachat" / "valid_self_original_no_cands.head200.txt")
    assert (counts["dialogues"], counts["examples"]) == (200, 1547)


def test_memorybank_cn_counts_and_gold_join(shared_data):
    for path in (shared_data / "memorybank" / "memory_bank_cn.json", shared_data / "memorybank"):
        counts = inspect_data("memorybank_probe", path)
        assert (counts["users"], counts["exchanges"], counts["questions"]) == (15, 566, 100)
        assert counts["examples"] == 100 and counts["gold"] == 100 and counts["language"] == "zh"


def test_memorybank_cn_evidence_points_at_items(shared_data):
    task = TASKS.get("memorybank_probe")()
    examples = task.build_examples(task.load(shared_data / "memorybank"))
    for example in examples:
        ids = {item.id for item in example.memory.items}
        assert set(example.meta["evidence"]) <= ids
        assert example.inputs["eval_date"] == "2023-05-07"
    assert examples[0].meta["evidence"] == ("2023-04-30#3",)
    no_gold = TASKS.get("memorybank_probe")(gold="none")
    assert all(e.references == () for e in no_gold.build_examples(no_gold.load(shared_data / "memorybank")))
