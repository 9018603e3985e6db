"""The small things that eroded trust: exit codes, format errors, stray folders, console noise, listings."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from harness.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_missing_gold_key_is_exit_2_and_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", "--tasks", "memorybank_probe", "--systems", "retrieval", "--output", str(out),
                 "--task-option", "memorybank_probe.gold=none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no metric of profile 'memorybank' can score task 'memorybank_probe'" in err and "gold" in err
    assert not out.exists() or not any(out.iterdir())


def test_wrong_format_file_names_the_formats_the_task_expected(tmp_path, capsys):
    wrong = tmp_path / "esconv_test.txt"
    wrong.write_text("1 your persona: i like cats.\n2 hello\thi there\n")
    out = tmp_path / "runs"
    assert main(["run", "--tasks", "esconv_strategy", "--systems", "copy_last", "--data", f"esconv_strategy={wrong}",
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "esconv_test.txt:1: json:" in err and "expected one of the formats it reads (multiesc, esconv_json)" in err
    assert not out.exists()


def test_deepspeed_logger_writes_to_stderr_not_stdout():
    code = ("from harness.console import keep_stdout_for_results; keep_stdout_for_results(); "
            "from deepspeed.utils.logging import logger; logger.warning('ds-noise')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ds-noise" not in done.stdout and "ds-noise" in done.stderr


def test_sacrebleu_tokenized_period_warning_is_silenced(caplog):
    from harness.metrics.base import Batch
    from harness.metrics.bleu import SacreBleu

    hyps = [f"line {i} ends with a period ." for i in range(120)]
    with caplog.at_level(logging.WARNING, logger="sacrebleu"):
        SacreBleu().statistics(Batch(hyps, [[h] for h in hyps]))
    assert not any("tokenized period" in r.getMessage() or "detokenize" in r.getMessage() for r in caplog.records)


def test_list_shows_task_formats_protocols_options_and_system_options(capsys):
    assert main(["list", "tasks"]) == 0
    tasks = capsys.readouterr().out
    assert "formats: multiesc, esconv_json; protocols: default, last" in tasks
    assert "expand_contractions=" in tasks
    assert main(["list", "systems"]) == 0
    assert "options: last_turns, top_k" in capsys.readouterr().out
