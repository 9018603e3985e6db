"""The CLI's contract: listed ids, and user errors as one line on stderr with exit status 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

TASK_IDS = ["dolphin_summarization", "dolphin_compression", "dolphin_response", "esconv_strategy",
            "memorybank_probe", "convai2_persona", "open_dialogue"]


def dialbench(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_list_tasks_prints_the_seven_ids():
    result = dialbench("list", "tasks", "--names-only")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == TASK_IDS


def test_list_systems_includes_the_simple_baselines():
    result = dialbench("list", "systems", "--names-only")
    assert result.returncode == 0, result.stderr
    assert {"copy_last", "retrieval", "zero_shot_lm"} <= set(result.stdout.split())


@pytest.mark.parametrize("args, message", [
    (("run", "--tasks", "esconv_stratgy"), "unknown task 'esconv_stratgy' (did you mean 'esconv_strategy'?)"),
    (("run", "--systems", "copylast"), "unknown system 'copylast' (did you mean 'copy_last'?)"),
    (("run", "--data", "convai2_persona=/no/such/file.txt"), "/no/such/file.txt: file not found"),
    (("run", "--data", "convai2_persona"), "--data expects KEY=VALUE"),
    (("table", "/no/such/run"), "/no/such/run/results.json: file not found"),
])
def test_user_errors_are_one_line_with_exit_status_2(args, message):
    result = dialbench(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_deepspeed_launcher_local_rank_argument_is_dropped():
    from harness.cli import strip_launcher_arguments

    assert strip_launcher_arguments(["--local_rank=1", "train", "x"]) == ["train", "x"]
    assert strip_launcher_arguments(["--local-rank", "0", "list", "tasks"]) == ["list", "tasks"]
    result = dialbench("--local_rank=0", "list", "tasks", "--names-only")
    assert result.returncode == 0 and result.stdout.split() == TASK_IDS
