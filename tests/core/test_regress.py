"""``dialbench regress``: exit 1 on a significant drop beyond tolerance, 0 otherwise, 2 on unusable input."""
from __future__ import annotations

import json
import shutil

import pytest

from harness.baseline import baseline_json, dumps, load_scored
from harness.cli import main
from harness.runner import SystemSpec, TaskSpec, run_system

TASK = "open_dialogue"


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """A real copy_last run on the bundled open_dialogue sample (parlai profile: fast metrics)."""
    root = tmp_path_factory.mktemp("regress") / "a"
    run_system(SystemSpec("copy_last"), [TaskSpec(name=TASK)], root, command=["test"])
    return root


def edited_copy(run_a, tmp_path, name, change_rows=None, change_results=None, change_config=None):
    """Return a copy of run_a with its samples/results/config edited by the given functions."""
    out = tmp_path / name
    shutil.copytree(run_a, out)
    if change_rows:
        rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        rows = change_rows(rows)
        (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for file, change in (("results.json", change_results), ("config.json", change_config)):
        if change:
            data = json.loads((out / file).read_text())
            change(data)
            (out / file).write_text(json.dumps(data))
    return out


def perfect(rows):
    """Outputs equal to the references: every example far better than copy_last."""
    return [{**r, "output": r["references"][0]} for r in rows]


def rescored_results(run):
    """Make results.json agree with samples.jsonl again (what a real run of those outputs records)."""
    from harness.baseline import load_scored as load
    from harness.commands.compare import compare_task

    task = load(run).tasks[TASK]
    report = compare_task(TASK, task.rows, task.rows, task.profile, task.language, resamples=1, seed=0)
    results = json.loads((run / "results.json").read_text())
    results["results"][TASK] = {k: v["a"] for k, v in report["metrics"].items()}
    (run / "results.json").write_text(json.dumps(results))


def regress(capsys, *args):
    code = main(["regress", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unchanged_run_passes(run_a, capsys):
    code, out, _ = regress(capsys, run_a, run_a)
    assert code == 0 and "PASS" in out and "| f1 |" in out


def test_significant_drop_beyond_tolerance_fails(run_a, tmp_path, capsys):
    better = edited_copy(run_a, tmp_path, "better", change_rows=perfect)
    rescored_results(better)
    code, out, _ = regress(capsys, better, run_a)
    assert code == 1 and "FAIL" in out and "**regressed**" in out and f"`{TASK}/f1: regressed`" in out
    code, out, _ = regress(capsys, better, run_a, "--json")
    report = json.loads(out)
    assert code == 1 and report["status"] == "fail"
    f1 = report["tasks"][TASK]["metrics"]["f1"]
    assert f1["delta"] < 0 and f1["high"] < 0 and f1["verdict"] == "regressed"


def test_drop_within_tolerance_passes(run_a, tmp_path, capsys):
    better = edited_copy(run_a, tmp_path, "better", change_rows=perfect)
    rescored_results(better)
    code, out, _ = regress(capsys, better, run_a, "--tolerance", "*=101")  # percent scale: everything allowed
    assert code == 0, out
    code, out, _ = regress(capsys, better, run_a, "--relative", "*=100%")
    assert code == 0, out
    code, out, _ = regress(capsys, better, run_a, "--metrics", "ppl")  # gate only a metric that did not move
    assert code == 0, out


def test_drop_that_is_not_significant_passes(run_a, tmp_path, capsys):
    one = edited_copy(run_a, tmp_path, "one", change_rows=lambda rows: [perfect(rows[:1])[0], *rows[1:]])
    rescored_results(one)
    code, out, _ = regress(capsys, one, run_a, "--json")
    report = json.loads(out)
    f1 = report["tasks"][TASK]["metrics"]["f1"]
    assert f1["delta"] < 0 and f1["low"] <= 0 <= f1["high"]
    assert f1["verdict"] == "not-significant" and code == 0


def test_two_sided_fails_on_a_significant_rise(run_a, tmp_path, capsys):
    better = edited_copy(run_a, tmp_path, "better", change_rows=perfect)
    assert regress(capsys, run_a, better, "--metrics", "f1,bleu-1")[0] == 0
    assert regress(capsys, run_a, better, "--metrics", "f1,bleu-1", "--two-sided")[0] == 1


def test_metric_without_interval_is_judged_by_tolerance_alone(run_a, tmp_path, capsys):
    """The references repeat unigrams a little more than copy_last: corpus Distinct-1 drops 1.37, and with
    no valid bootstrap interval for it the tolerance decides."""
    better = edited_copy(run_a, tmp_path, "better", change_rows=perfect)
    code, out, _ = regress(capsys, run_a, better, "--metrics", "interdistinct-1", "--json")
    result = json.loads(out)["tasks"][TASK]["metrics"]["interdistinct-1"]
    assert result["interval"] is False and result["delta"] < 0 and result["verdict"] == "regressed" and code == 1
    assert regress(capsys, run_a, better, "--metrics", "interdistinct-1", "--tolerance", "interdistinct-1=2")[0] == 0


@pytest.mark.parametrize("name, edit", [
    ("metric signatures differ", dict(change_results=lambda r: r["signatures"].update({TASK: r["signatures"][TASK] + "|x:1"}))),
    ("test data differ", dict(change_results=lambda r: r["tasks"][TASK].update(data_sha256="0" * 64))),
    ("--limit differs", dict(change_results=lambda r: r["tasks"][TASK].update(limit=5))),
    ("task protocol differs", dict(change_results=lambda r: r["tasks"][TASK].update(protocol="other"))),
    ("metric profile differs", dict(change_results=lambda r: r["tasks"][TASK].update(profile="basic"))),
    ("example ids", dict(change_rows=lambda rows: rows[:-1])),
    ("not in the candidate", dict(change_rows=lambda rows: [{**r, "task": "other_task"} for r in rows],
                                  change_results=lambda r: [r[k].update(other_task=r[k].pop(TASK)) for k in
                                                            ("results", "signatures", "tasks", "intervals")])),
])
def test_unusable_input_exits_2(run_a, tmp_path, capsys, name, edit):
    other = edited_copy(run_a, tmp_path, "other", **edit)
    code, out, err = regress(capsys, run_a, other)
    assert code == 2 and name in err and err.count("\n") == 1 and not out


def test_baseline_file_round_trips(run_a, tmp_path, capsys):
    code, out, _ = regress(capsys, "--write-baseline", run_a)
    assert code == 0
    path = tmp_path / "baseline.json"
    path.write_text(out)
    assert json.loads(out) == json.loads(dumps(baseline_json(run_a)))
    from_file, from_dir = load_scored(path).tasks[TASK], load_scored(run_a).tasks[TASK]
    for field in ("profile", "language", "signature", "data_sha256", "limit", "metrics"):
        assert getattr(from_file, field) == getattr(from_dir, field)
    assert [r.output for _, r in from_file.rows] == [r.output for _, r in from_dir.rows]
    assert regress(capsys, path, run_a)[0] == 0
    better = edited_copy(run_a, tmp_path, "better", change_rows=perfect)
    rescored_results(better)
    code, out, _ = regress(capsys, "--write-baseline", better)
    path.write_text(out)
    assert regress(capsys, path, run_a)[0] == 1


def test_recorded_numbers_that_no_longer_rescore_are_scorer_drift(run_a, tmp_path, capsys):
    drifted = edited_copy(run_a, tmp_path, "drifted",
                          change_results=lambda r: r["results"][TASK].update(f1=r["results"][TASK]["f1"] + 0.1))
    code, out, _ = regress(capsys, drifted, run_a, "--json")
    assert code == 1 and json.loads(out)["tasks"][TASK]["metrics"]["f1"]["verdict"] == "scorer-drift"


def test_bad_tolerance_is_a_user_error(run_a, capsys):
    code, _, err = regress(capsys, run_a, run_a, "--tolerance", "f1=lots")
    assert code == 2 and "--tolerance f1=lots: expected a number" in err
