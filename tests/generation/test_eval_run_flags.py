"""`eval` takes every task flag `run` takes, one `--set` syntax; `run` folders are named by settings."""
from __future__ import annotations

import json

from harness.cli import main


def test_eval_takes_protocol_profile_and_task_options(tiny_llama_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["eval", "--model", str(tiny_llama_dir), "--tasks", "esconv_strategy", "--protocol", "esconv_strategy=last",
            "--profile", "esconv_strategy=basic", "--task-option", "esconv_strategy.expand_contractions=true",
            "--set", "zero_shot_lm.num_beams=1", "--max-new-tokens", "4", "--batch-size", "4", "--limit", "3",
            "--output", str(out), "--cache", str(tmp_path / "gen.sqlite")]
    assert main(args) == 0
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    task_run = config["task_runs"]["esconv_strategy"]
    assert task_run["task"]["protocol"] == "last" and task_run["profile"] == "basic"
    assert task_run["task"]["options"]["expand_contractions"] is True
    assert config["system"]["options"]["num_beams"] == 1


def test_set_means_the_same_with_and_without_the_system_prefix(tiny_llama_dir, tmp_path, capsys):
    from harness.commands import eval as eval_command

    digests = []
    for setting in ("num_beams=2", "zero_shot_lm.num_beams=2"):
        parser = __import__("argparse").ArgumentParser()
        eval_command.add_arguments(parser)
        args = parser.parse_args(["--model", str(tiny_llama_dir), "--tasks", "convai2_persona", "--set", setting])
        digests.append(eval_command.system_options(args, ("model", "num_beams", "seed"), "zero_shot_lm"))
    assert digests[0] == digests[1] and digests[0]["num_beams"] == 2


def test_two_runs_with_other_profiles_keep_both_results(tmp_path, capsys):
    base = ["run", "--tasks", "esconv_strategy", "--systems", "copy_last", "--output", str(tmp_path)]
    assert main(base + ["--profile", "esconv_strategy=basic"]) == 0
    assert main(base + ["--profile", "esconv_strategy=parlai"]) == 0
    capsys.readouterr()
    profiles = sorted(json.loads((d / "results.json").read_text())["tasks"]["esconv_strategy"]["profile"]
                      for d in tmp_path.iterdir() if (d / "results.json").exists())
    assert profiles == ["basic", "parlai"]
    assert all(d.name.startswith("copy_last-") for d in tmp_path.iterdir() if d.is_dir())


def test_eval_summary_flags_degenerate_outputs(tiny_llama_dir, tmp_path, capsys):
    args = ["eval", "--model", str(tiny_llama_dir), "--tasks", "esconv_strategy", "--profile", "esconv_strategy=basic",
            "--max-new-tokens", "1", "--batch-size", "4", "--limit", "4", "--output", str(tmp_path / "run"),
            "--cache", str(tmp_path / "gen.sqlite")]
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = [line for line in captured.err.splitlines() if line.startswith("[dialbench] wrote")][-1]
    assert "WARNING esconv_strategy: degenerate outputs: 4 of 4 scored hypotheses" in summary
    assert "degenerate outputs" in captured.out  # the table footnotes it too
