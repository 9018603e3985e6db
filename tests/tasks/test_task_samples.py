"""Every task reads its bundled samples (test and train) and builds prompt-ready examples."""
from __future__ import annotations

import pytest

from harness.records import Example
from harness.plugins import TASKS
from tasks import samples_dir

ALL_TASKS = TASKS.names()


def test_the_seven_tasks_are_registered():
    assert ALL_TASKS == ["dolphin_summarization", "dolphin_compression", "dolphin_response", "esconv_strategy",
                         "memorybank_probe", "convai2_persona", "open_dialogue"]


@pytest.mark.parametrize("name", ALL_TASKS)
@pytest.mark.parametrize("split", ["test", "train"])
def test_bundled_sample_loads_and_builds_examples(name, split):
    task = TASKS.get(name)()
    examples = task.build_examples(task.load(task.sample_path(split)))
    assert examples and all(isinstance(e, Example) and e.task == name for e in examples)
    assert len({e.id for e in examples}) == len(examples), "example ids must be unique"
    assert all(isinstance(e.references, tuple) and e.references and e.references[0] for e in examples)
    if split == "test":  # small enough for the default suite on 2 cores
        assert 4 <= len(examples) <= 30
    for example in examples[:3]:
        messages = task.prompt(example)
        assert [m["role"] for m in messages] == ["system", "user"]
        assert all(m["content"].strip() for m in messages)


@pytest.mark.parametrize("name", ALL_TASKS)
def test_task_declares_its_identity(name):
    task_cls = TASKS.get(name)
    assert task_cls.description and task_cls.formats and task_cls.version >= 1
    assert task_cls.default_profile in {"dolphin", "nlgeval", "memorybank", "spt", "parlai"}
    expected_zh = name.startswith("dolphin_") or name == "memorybank_probe"
    assert (task_cls.language == "zh") == expected_zh
    assert "rule" in (task_cls.__doc__ or "").lower(), "the example-building rule is documented"


def test_samples_are_small():
    total = sum(p.stat().st_size for p in samples_dir().rglob("*") if p.is_file())
    assert total < 300_000


def test_repeated_build_gives_identical_examples():
    task = TASKS.get("esconv_strategy")()
    dialogues = task.load(task.sample_path("test"))
    assert task.build_examples(dialogues) == task.build_examples(dialogues)


def test_unknown_task_option_is_a_user_error():
    from harness.errors import UserError

    with pytest.raises(UserError, match="no option"):
        TASKS.get("open_dialogue")(max_turn=3)
    with pytest.raises(UserError, match="expected true or false"):
        TASKS.get("esconv_strategy")(expand_contractions="maybe")
    with pytest.raises(UserError, match="not one of"):
        TASKS.get("esconv_strategy")(strategy_set="magic")
