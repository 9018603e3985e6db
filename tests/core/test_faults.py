"""Fault injection through the CLI: every fault a user can cause ends in exit 2 with one line naming
the path (and line and field where there is one), never in a traceback, a hang, a silently wrong
result, or lost finished work. tests/README.md lists the fault classes.

Most cases run ``python -m harness`` in a subprocess, because the faults live at the process
boundary (file-size limits, umask, permissions, a FIFO that would block, a second process).
CI runs as root, which ignores file modes, so permission faults drop the capabilities that let root
ignore them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) from the child's bounding set before
it starts: the child is still uid 0, owner of its files, but ``chmod`` now binds it as it would bind
any user. A full disk is ``RLIMIT_FSIZE`` in the child (writes fail with EFBIG instead of ENOSPC,
through the same OSError paths); no mount or privilege is needed.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_tools import (  # noqa: E402
    PERMISSIONS_BIND, PROGRESS, QUICK, SAMPLES, dialbench, file_size_limit, needs_permissions, unprivileged,
    user_error)


def esconv_copy(folder: Path, line_2: str) -> Path:
    """Return a copy of the bundled ESConv sample whose second line is ``line_2``."""
    lines = (SAMPLES / "esconv_strategy.test.txt").read_text(encoding="utf-8").splitlines()
    path = folder / "esconv.jsonl"
    path.write_text("\n".join([lines[0], line_2, *lines[2:]]) + "\n", encoding="utf-8")
    return path


# --- silently wrong results --------------------------------------------------------------------
def test_negative_limit_is_refused(tmp_path):
    user_error(dialbench("run", *QUICK, "--limit", "-3", "--output", "out", cwd=tmp_path), "--limit must be at least 1")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--protocol", "esconv_stratgy=last", "did you mean 'esconv_strategy'"),
    ("--profile", "esconv_stratgy=basic", "did you mean 'esconv_strategy'"),
    ("--task-option", "esconv_stratgy.expand_contractions=true", "did you mean 'esconv_strategy'"),
    ("--profile", "esconv_strategy=basic", "--profile names task 'esconv_strategy', which is not in --tasks"),
    ("--data", f"convai2_persona={SAMPLES / 'convai2_persona.test.txt'}", "which is not in --tasks"),
])
def test_task_ids_inside_options_are_checked(tmp_path, flag, value, message):
    user_error(dialbench("run", *QUICK, flag, value, "--output", "out", cwd=tmp_path), flag, message)


def test_set_without_a_key_says_so(tmp_path):
    user_error(dialbench("run", *QUICK, "--set", "copy_last.=1", cwd=tmp_path), "expects SYSTEM.KEY=VALUE", "copy_last.=1")


def run_dir(parent: Path, system: str = "copy_last") -> Path:
    """Return the one run directory of ``system`` under ``parent`` (named SYSTEM-<settings digest>)."""
    found = sorted(parent.glob(f"{system}-*"))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.slow
def test_second_run_with_other_settings_does_not_overwrite_the_first(tmp_path):
    from harness.runner import SystemSpec, TaskSpec, settings_conflict

    assert dialbench("run", *QUICK, "--output", "out", cwd=tmp_path).returncode == 0
    results = run_dir(tmp_path / "out") / "results.json"
    first = results.read_text()
    other = dialbench("run", *QUICK, "--output", "out", "--limit", "2", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert results.read_text() == first and len(list((tmp_path / "out").glob("copy_last-*"))) == 2
    # A directory reused with other settings (eval --output DIR) is refused before any work:
    changed = settings_conflict(SystemSpec("copy_last"), [TaskSpec("open_dialogue", limit=2)], results.parent, 0)
    assert changed == "task open_dialogue with other limit"
    assert settings_conflict(SystemSpec("copy_last"), [TaskSpec("open_dialogue")], results.parent, 1) == "seed 0, not 1"


# --- finished work lost to a late failure ------------------------------------------------------
def test_lone_surrogate_is_refused_at_load_with_its_line_and_field(tmp_path):
    line = (SAMPLES / "esconv_strategy.test.txt").read_text(encoding="utf-8").splitlines()[1]
    record = json.loads(line)
    record["dialog"][1]["text"] = "I am \ud800 tired"
    path = esconv_copy(tmp_path, json.dumps(record))
    result = dialbench("run", "--tasks", "esconv_strategy", "--systems", "copy_last", "--data",
                       f"esconv_strategy={path}", "--output", "out", cwd=tmp_path)
    user_error(result, f"{path}:2: dialog[1].text: lone surrogate '\\ud800'")


def test_results_holding_a_lone_surrogate_are_written_escaped(tmp_path):
    from harness.jsonio import write_jsonl

    row = {"output": "half an emoji \ud83d from a decoder", "ok": "ü"}
    write_jsonl(tmp_path / "samples.jsonl", [row])
    assert json.loads((tmp_path / "samples.jsonl").read_text(encoding="utf-8")) == row


def _output_in_the_way(tmp_path: Path, case: str) -> tuple[list[str], object, str]:
    """Return (extra args, preexec_fn, expected message) for one unusable output location."""
    if case == "file_in_place":
        (tmp_path / "out").write_text("not a folder")
        return ["--output", "out"], None, "out is not a directory"
    if case == "under_a_file":
        (tmp_path / "plain").write_text("a file")
        return ["--output", "plain/out"], None, "plain is not a directory"
    if case == "read_only":
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o555)
        return ["--output", "ro/out"], unprivileged(), "Permission denied"
    if case == "full_disk":
        return ["--output", "out"], file_size_limit(16 * 1024), "File too large"
    if case == "table_is_a_folder":
        (tmp_path / "table.md").mkdir()
        return ["--output", "out", "--table", "table.md"], None, "table.md: is a directory"
    if case == "table_under_a_file":
        (tmp_path / "plain").write_text("a file")
        return ["--output", "out", "--table", "plain/table.md"], None, "plain is not a directory"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["file_in_place", "under_a_file", "read_only", "full_disk", "table_is_a_folder",
                                  "table_under_a_file"])
def test_unusable_output_is_reported_before_any_work(tmp_path, case):
    if case == "read_only" and not PERMISSIONS_BIND:
        pytest.skip("root without CAP_SETPCAP: file modes cannot bind")
    args, preexec, message = _output_in_the_way(tmp_path, case)
    result = dialbench("run", *QUICK, *args, cwd=tmp_path, preexec_fn=preexec)
    user_error(result, message)
    assert PROGRESS not in result.stderr


@pytest.mark.slow
def test_written_files_follow_the_umask(tmp_path):
    def umask_022():
        os.umask(0o022)

    env_run = dialbench("run", *QUICK, "--output", "out", cwd=tmp_path, preexec_fn=umask_022)
    assert env_run.returncode == 0, env_run.stderr
    written = [*run_dir(tmp_path / "out").glob("*.json*"), tmp_path / "out" / "leaderboard.md",
               tmp_path / "out" / "leaderboard.html"]
    assert len(written) == 5
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {"0o644"}


@pytest.mark.slow
def test_failed_first_task_leaves_a_run_directory_that_a_rerun_completes(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe not text\n")
    good = SAMPLES / "open_dialogue.test.txt"
    args = ["run", "--tasks", "convai2_persona,open_dialogue", "--systems", "copy_last", "--output", "out"]
    user_error(dialbench(*args, "--data", f"open_dialogue={bad}", cwd=tmp_path), f"{bad}:1: encoding")
    failed = run_dir(tmp_path / "out")
    config = json.loads((failed / "config.json").read_text())
    assert [t["name"] for t in config["tasks"]] == ["convai2_persona", "open_dialogue"]
    assert set(config["task_runs"]) == {"convai2_persona"}  # the finished task is kept
    finished = json.loads((failed / "results.json").read_text())["results"]["convai2_persona"]
    # The same command with the file fixed is the same settings digest only if the data path is the same:
    bad.write_bytes(good.read_bytes())
    rerun = dialbench(*args, "--data", f"open_dialogue={bad}", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "copy_last on convai2_persona" not in rerun.stderr  # kept, not computed again
    results = json.loads((failed / "results.json").read_text())["results"]
    assert set(results) == {"open_dialogue", "convai2_persona"} and results["convai2_persona"] == finished


@pytest.mark.slow
def test_concurrent_identical_run_waits_and_reuses_the_finished_work(tmp_path):
    import fcntl

    assert dialbench("run", *QUICK, "--output", "done", cwd=tmp_path).returncode == 0
    busy = tmp_path / "busy" / run_dir(tmp_path / "done").name  # same settings, same folder name
    busy.mkdir(parents=True)
    holder = os.open(busy / ".dialbench.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # this test plays the first process, still working
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DIALBENCH_CACHE": str(tmp_path / "cache")}
    second = subprocess.Popen([sys.executable, "-m", "harness", "run", *QUICK, "--output", "busy"], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        waited = ""
        deadline = time.monotonic() + 120
        while "waiting for it to finish" not in waited and second.poll() is None and time.monotonic() < deadline:
            waited += second.stderr.readline()
        assert "being written by another dialbench process" in waited, waited
        time.sleep(0.5)
        assert second.poll() is None  # it waits instead of computing everything a second time
        for name in ("config.json", "results.json", "samples.jsonl"):  # the first process finishes
            shutil.copy(run_dir(tmp_path / "done") / name, busy / name)
    finally:
        os.close(holder)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert PROGRESS not in waited + err and "copy_last" in out  # it reused the finished task


# --- tracebacks on faults a user can fix -------------------------------------------------------
def test_deeply_nested_json_is_a_located_data_error(tmp_path):
    path = esconv_copy(tmp_path, '{"dialog": ' + "[" * 200_000 + "]" * 200_000 + "}")
    result = dialbench("data", "inspect", "esconv_strategy", str(path), cwd=tmp_path)
    user_error(result, f"{path}:2: json: nested too deeply")


@needs_permissions
def test_unreadable_data_file_is_named(tmp_path):
    path = tmp_path / "secret.txt"
    shutil.copy(SAMPLES / "open_dialogue.test.txt", path)
    path.chmod(0)
    result = dialbench("run", *QUICK, "--data", f"open_dialogue={path}", "--output", "out", cwd=tmp_path,
                       preexec_fn=unprivileged())
    user_error(result, f"{path}: cannot read (Permission denied)")


def test_fifo_as_data_file_is_refused_instead_of_hanging(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    result = dialbench("run", *QUICK, "--data", f"open_dialogue={fifo}", "--output", "out", cwd=tmp_path, timeout=60)
    user_error(result, f"{fifo}: is a FIFO, not a regular file")


def test_symlink_loop_is_named_as_such(tmp_path):
    (tmp_path / "a.txt").symlink_to(tmp_path / "b.txt")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    result = dialbench("run", *QUICK, "--data", f"open_dialogue={tmp_path / 'a.txt'}", cwd=tmp_path)
    user_error(result, "a.txt: symlink loop")


def test_duplicate_keys_are_reported_where_they_are(tmp_path):
    """The key's text also appears earlier as a value or in a sibling object, where a text search stops."""
    from harness.errors import DataError
    from tasks.formats.strict import load_json

    turns = [{"query": "hi", "response": "hello"}, {"query": "tea?", "response": "yes"}]
    store = {"Amy": {"name": "Amy", "history": {"2023-04-27": turns}}, "Bob": {"name": "Bob", "history": {}}}
    text = json.dumps(store, indent=1)
    top = tmp_path / "top.json"
    top.write_text(text[:-2] + ',\n "Amy": {"history": {}}\n}')
    with pytest.raises(DataError) as err:
        load_json(top)
    assert (err.value.line, err.value.field) == (text.count("\n") + 1, "id") and "first at line 2" in str(err.value)
    nested = tmp_path / "nested.json"
    nested.write_text(text.replace('"response": "yes"', '"response": "yes",\n     "query": "again"'))
    with pytest.raises(DataError) as err:
        load_json(nested)
    line = nested.read_text().splitlines().index('     "query": "again"') + 1
    assert (err.value.line, err.value.field) == (line, "Amy.history.2023-04-27[1].query"), str(err.value)


@pytest.mark.slow
def test_full_disk_during_model_conversion_is_a_user_error(tmp_path):
    script = (
        "import sys\n"
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "from harness.checkpoints.convert import publish\n"
        "from harness.errors import UserError\n"
        "model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128,\n"
        "    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))\n"
        "try:\n"
        f"    publish(__import__('pathlib').Path({str(tmp_path / 'models' / 'tiny')!r}), lambda tmp: model.save_pretrained(str(tmp)))\n"
        "except UserError as err:\n"
        "    print(f'dialbench: error: {err}', file=sys.stderr); sys.exit(2)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, preexec_fn=file_size_limit(64 * 1024))
    user_error(result, "models/tiny: cannot write the converted model", "File too large", "DIALBENCH_CACHE")
    assert not list((tmp_path / "models").iterdir())  # no half-written folder left behind


def test_fifty_megabyte_utterance_is_scored_with_a_warning(capsys, monkeypatch):
    from harness.metrics import text
    from harness.metrics.text import NLTK_MAX_CHARS, nltk_tokens

    monkeypatch.setattr(text, "_warned_long", False)
    started = time.perf_counter()
    tokens = nltk_tokens("word " * 10_000_000)
    assert len(tokens) == NLTK_MAX_CHARS // 5 and time.perf_counter() - started < 60
    assert "tokenized for nltk in pieces" in capsys.readouterr().err
    assert nltk_tokens("Hello Mr. Smith. How are you?") == ["Hello", "Mr", ".", "Smith", ".", "How", "are", "you", "?"]
