"""A plug-in package outside dialbench adds a task and a system through entry points alone.

The package and its ``*.dist-info`` (METADATA + entry_points.txt) are written to a temporary
folder put on ``PYTHONPATH``: exactly what ``pip install`` of a real plug-in leaves on disk, so
``importlib.metadata`` finds it with no mock.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PLUGIN = textwrap.dedent('''
    """A tiny echo plug-in: a task over a JSONL file of prompt/reply pairs and a system that shouts."""
    import json
    from pathlib import Path

    from harness.errors import DataError
    from harness.records import BOT, USER, Dialogue, Example, Response, Turn
    from harness.system import System
    from harness.task import Task


    class EchoTask(Task):
        name = "echo_probe"
        description = "plug-in task: reply to one prompt"
        formats = ("echo_jsonl",)
        default_profile = "basic"
        default_systems = ("shout",)

        def load(self, path, fmt=None):
            dialogues = []
            for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
                row = json.loads(line)
                if "prompt" not in row:
                    raise DataError(path, number, "prompt", "missing")
                dialogues.append(Dialogue(id=str(number), turns=(Turn(USER, row["prompt"]), Turn(BOT, row["reply"]))))
            return dialogues

        def build_examples(self, dialogues):
            return [Example(id=d.id, task=self.name, dialogue_id=d.id, context=d.turns[:1],
                            references=(d.turns[1].text,)) for d in dialogues]

        def prompt(self, example):
            return [{"role": "user", "content": example.context[-1].text}]


    class ShoutSystem(System):
        name = "shout"
        description = "plug-in system: the prompt in capitals"

        def respond(self, examples):
            return [Response(example_id=e.id, text=e.context[-1].text.upper()) for e in examples]
''')


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "echo_plugin").mkdir(parents=True)
    (site / "echo_plugin" / "__init__.py").write_text(PLUGIN, encoding="utf-8")
    samples = site / "echo_plugin" / "samples"
    samples.mkdir()
    (samples / "echo_probe.test.jsonl").write_text(
        "\n".join(json.dumps({"prompt": p, "reply": r}) for p, r in
                  [("hello there", "HELLO THERE"), ("how are you", "fine thanks"), ("good night", "GOOD NIGHT")]) + "\n",
        encoding="utf-8")
    dist = site / "echo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[dialbench.tasks]\necho_probe = echo_plugin:EchoTask\n\n[dialbench.systems]\nshout = echo_plugin:ShoutSystem\n",
        encoding="utf-8")
    return site


def dialbench(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_plugin_is_listed(plugin_path: Path, tmp_path: Path) -> None:
    tasks = dialbench(plugin_path, "list", "tasks", cwd=tmp_path)
    systems = dialbench(plugin_path, "list", "systems", cwd=tmp_path)
    assert tasks.returncode == 0 and systems.returncode == 0, tasks.stderr + systems.stderr
    assert "echo_probe" in tasks.stdout and "plug-in task" in tasks.stdout
    assert "shout" in systems.stdout and "plug-in system" in systems.stdout


def test_plugin_runs(plugin_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = dialbench(plugin_path, "run", "--tasks", "echo_probe", "--systems", "shout", "--output", str(out),
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = list(out.rglob("results.json"))
    assert len(results) == 1
    scores = json.loads(results[0].read_text())["results"]["echo_probe"]
    assert scores, scores
    samples = [json.loads(line) for line in (results[0].parent / "samples.jsonl").read_text().splitlines()]
    assert sorted(row["output"] if "output" in row else row["hypothesis"] for row in samples) == [
        "GOOD NIGHT", "HELLO THERE", "HOW ARE YOU"]


def test_plugin_cannot_replace_a_builtin(plugin_path: Path, tmp_path: Path) -> None:
    entry_points = next(plugin_path.glob("*.dist-info")) / "entry_points.txt"
    entry_points.write_text("[dialbench.systems]\ncopy_last = echo_plugin:ShoutSystem\n", encoding="utf-8")
    result = dialbench(plugin_path, "list", "systems", cwd=tmp_path)
    assert result.returncode == 2
    assert "copy_last" in result.stderr and "Traceback" not in result.stderr
