"""The runner end to end on bundled samples with the model-free baselines (fast)."""
from __future__ import annotations

import json

import pytest

from harness.errors import UserError
from harness.runner import SystemSpec, TaskSpec, run_system
from harness.plugins import TASKS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "retrieval"
    run_system(SystemSpec("retrieval"), [TaskSpec(t) for t in TASKS.names()], out, seed=3, command=["test"])
    return out


def test_results_json_has_a_number_per_metric_per_task(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["results"]) == set(TASKS.names())
    for task, metrics in results["results"].items():
        numeric = {k: v for k, v in metrics.items() if v is not None}
        assert numeric, task
        assert all(isinstance(v, (int, float)) for v in numeric.values())
        assert results["signatures"][task].startswith("profile:")


def test_samples_jsonl_has_one_line_per_example_with_scores(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    for task, n in results["n_examples"].items():
        task_rows = [r for r in rows if r["task"] == task]
        assert len(task_rows) == n > 0
        assert len({r["example_id"] for r in task_rows}) == n
        assert all(isinstance(r["scores"], dict) and "output" in r and "references" in r for r in task_rows)


def test_config_records_seed_versions_and_data_hashes(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["seed"] == 3
    assert config["environment"]["packages"]["transformers"]
    for task in TASKS.names():
        spec = config["task_runs"][task]["spec"]
        assert len(spec["data_sha256"]) == 64 and spec["bundled_sample"] is True
        assert config["task_runs"][task]["signature"]


def test_rerun_keeps_finished_tasks_without_running_them(run_dir, monkeypatch):
    import harness.runner as runner

    def fail(*args, **kwargs):
        raise AssertionError("a finished task was run again")

    before = (run_dir / "results.json").read_text()
    monkeypatch.setattr(runner, "run_task", fail)
    run_system(SystemSpec("retrieval"), [TaskSpec(t) for t in TASKS.names()], run_dir, seed=3, command=["test"])
    assert json.loads((run_dir / "results.json").read_text()) == json.loads(before)


def test_changed_seed_reruns(run_dir, monkeypatch, tmp_path):
    import harness.runner as runner

    calls = []
    real = runner.run_task
    monkeypatch.setattr(runner, "run_task", lambda *a, **k: calls.append(a[1].name) or real(*a, **k))
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(run_dir, copy)
    run_system(SystemSpec("retrieval"), [TaskSpec("convai2_persona")], copy, seed=4, command=["test"])
    assert calls == ["convai2_persona"]


def test_missing_data_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        run_system(SystemSpec("copy_last"), [TaskSpec("convai2_persona", data=tmp_path / "nope.txt")], tmp_path / "o")


def test_weights_id_changes_when_weights_are_retrained_into_the_same_folder(tmp_path):
    import harness.runner as runner

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"model_type": "gpt2", "n_layer": 1}')
    first = runner._weights_id(str(model_dir))
    (model_dir / "config.json").write_text('{"model_type": "gpt2", "n_layer": 2}')
    assert first and runner._weights_id(str(model_dir)) != first
    assert runner._weights_id(None) is None
