"""harness/rundir.py owns the run directory: typed rows and results, explicit profile and unit."""
from __future__ import annotations

import json

import pytest

from harness.errors import UserError
from harness.rundir import RunResults, SampleRow, TaskResult, read_results, read_samples, write_results
from harness.runner import SystemSpec, TaskSpec, run_system


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rundir") / "copy_last"
    run_system(SystemSpec("copy_last"), [TaskSpec("convai2_persona"), TaskSpec("memorybank_probe")], out, command=["t"])
    return out


def test_results_json_records_profile_and_unit_explicitly(copy_run):
    stored = json.loads((copy_run / "results.json").read_text())
    facts = stored["tasks"]["convai2_persona"]
    assert facts["profile"] == "spt" and facts["unit"] == "percent" and facts["table_factor"] == 1.0
    assert stored["tasks"]["memorybank_probe"]["profile"] == "memorybank"
    assert facts["bundled_sample"] is True and len(facts["data_sha256"]) == 64 and facts["protocol"] == "default"
    result = read_results(copy_run).tasks["convai2_persona"]
    assert isinstance(result, TaskResult) and result.n_examples == stored["n_examples"]["convai2_persona"]


def test_table_reads_the_unit_from_results_not_from_the_signature(copy_run, tmp_path):
    from leaderboards.render import render_table

    results = read_results(copy_run)
    task = results.tasks["convai2_persona"]
    task.signature, task.table_factor = "profile:unknown-name", 100.0  # only the explicit factor can scale
    write_results(tmp_path, RunResults(results.system, {"convai2_persona": task}))
    rows = json.loads(render_table([tmp_path], fmt="json"))
    f1 = task.metrics["F1"]
    assert rows[0]["metrics"]["F1"] == pytest.approx(f1 * 100.0) and rows[0]["unit"] == "percent"


def test_sample_rows_round_trip_and_rebuild_records(copy_run):
    rows = read_samples(copy_run)["convai2_persona"]
    line, row = rows[0]
    assert isinstance(row, SampleRow) and line == 1 and row.hypothesis is not None
    example, response = row.records()
    assert example.references == tuple(row.references) and response.text == row.output
    assert SampleRow.from_json("x", 1, row.to_json()) == row


def test_bad_rows_and_missing_files_are_one_line_errors(tmp_path):
    (tmp_path / "samples.jsonl").write_text('{"task": "t", "example_id": 1, "output": "x"}\n')
    with pytest.raises(UserError, match=r"samples.jsonl:1: references: missing"):
        read_samples(tmp_path)
    with pytest.raises(UserError, match="results.json: file not found"):
        read_results(tmp_path)


def test_first_layout_results_are_still_read_with_the_profile_from_config(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({
        "results": {"esconv_strategy": {"Bleu_1": 0.1}}, "signatures": {"esconv_strategy": "profile:nlgeval|lang:en|unit:fraction"},
        "n_examples": {"esconv_strategy": 3}, "system": "copy_last"}))
    (tmp_path / "config.json").write_text(json.dumps({"task_runs": {"esconv_strategy": {
        "profile": "nlgeval", "spec": {"data_sha256": "ab", "limit": 2, "bundled_sample": False}}}}))
    result = read_results(tmp_path).tasks["esconv_strategy"]
    assert (result.profile, result.unit, result.limit, result.language) == ("nlgeval", "fraction", 2, "en")
    assert result.table_scale("Bleu_1") == 100.0
