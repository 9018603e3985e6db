"""The README's "adding a task / system / metric" examples are real code: run each one."""
from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import REPO_ROOT


def readme_block(marker: str) -> str:
    """Return the python code block of the README whose first line is ``# marker``."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        if block.startswith(f"# {marker}\n"):
            return block
    raise AssertionError(f"README has no python block starting with '# {marker}'")


def test_task_example_loads_and_builds(tmp_path: Path) -> None:
    namespace: dict = {}
    exec(compile(readme_block("tasks/my_qa.py"), "README:tasks/my_qa.py", "exec"), namespace)
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps({"id": i, "question": f"Q{i}?", "answer": f"a{i}"}) for i in range(3)) + "\n")
    task = namespace["MyQATask"](lowercase="true")
    examples = task.build_examples(task.load(data))
    assert [e.context[-1].text for e in examples] == ["q0?", "q1?", "q2?"]
    assert examples[0].references == ("a0",)
    assert task.prompt(examples[0])[-1]["content"] == "q0?"


def test_system_example_answers() -> None:
    from harness.plugins import TASKS
    from harness.records import BOT, USER, Example, Turn

    namespace: dict = {}
    exec(compile(readme_block("baselines/longest_turn.py"), "README:longest_turn", "exec"), namespace)
    system = namespace["LongestTurnSystem"](TASKS.get("convai2_persona")())
    example = Example(id="1", task="t", dialogue_id="d", context=(Turn(USER, "hi"), Turn(BOT, "hello you")),
                      references=("x",))
    assert system.respond([example])[0].text == "hello you"


def test_metric_example_scores() -> None:
    from harness.metrics.base import Batch

    namespace: dict = {}
    exec(compile(readme_block("harness/metrics/length.py"), "README:length", "exec"), namespace)
    metric = namespace["MeanLength"]()
    batch = Batch(["a b c", "a"], [["x"], ["y"]])
    assert metric.finalize(metric.statistics(batch).sum(axis=0)) == {"length": 2.0}
