"""Generation-cache faults never cost a run: `dialbench eval` on a tiny model with a damaged, malformed,
read-only or filling cache (see tests/core/test_faults.py for the techniques and tests/README.md for
the list). Permission faults need file modes that bind, which root gets by dropping its DAC
capabilities in the child; a full disk is RLIMIT_FSIZE in the child.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from fault_tools import PERMISSIONS_BIND, file_size_limit, unprivileged, user_error  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def eval_args(model: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(model), "--tasks", "convai2_persona", "--limit", "4", "--batch-size", "2",
            "--max-new-tokens", "6", "--output", str(out), *extra]


def engine_stats(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    return config["task_runs"]["convai2_persona"]["system"]["engine_stats"]


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())["results"]["convai2_persona"]


def same_scores(run_dir: Path, other: Path) -> bool:
    """Return True when two runs scored the same outputs: equal keys, numbers equal to 1e-6 relative.

    Only the outputs come from the cache; metrics are recomputed, and BERTScore's model in another
    process (another torch thread count) can move a score in its seventh digit.
    """
    a, b = results(run_dir), results(other)
    return a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-6) for k in a)


@pytest.fixture
def warm(tiny_llama_dir, tmp_path, capsys):
    """Return (cache file, run dir) of a finished eval whose outputs all sit in the cache."""
    cache = tmp_path / "warm.sqlite"
    assert main(eval_args(tiny_llama_dir, tmp_path / "warm", "--cache", str(cache))) == 0
    capsys.readouterr()
    return cache, tmp_path / "warm"


def damage(path: Path) -> None:
    """Overwrite the pages after the header page with garbage, as a bad disk sector or a torn copy does."""
    data = bytearray(path.read_bytes())
    assert len(data) >= 3 * 4096
    data[4096 + 8 : len(data)] = bytes((i * 37 + 11) % 256 for i in range(len(data) - 4096 - 8))
    path.write_bytes(bytes(data))


def test_damaged_default_cache_is_skipped_with_a_warning(tiny_llama_dir, warm, isolated_cache, tmp_path, capsys):
    cache, warm_dir = warm
    isolated_cache.mkdir(parents=True, exist_ok=True)
    default = isolated_cache / "generations.sqlite"
    shutil.copy(cache, default)
    damage(default)
    assert main(eval_args(tiny_llama_dir, tmp_path / "after")) == 0
    err = capsys.readouterr().err
    assert f"{default}: damaged" in err and "running without the generation cache" in err
    assert engine_stats(tmp_path / "after")["generate_computed"] == 4
    assert same_scores(tmp_path / "after", warm_dir)


def test_damaged_named_cache_stops_before_work(tiny_llama_dir, warm, tmp_path, capsys):
    cache, _ = warm
    damage(cache)
    assert main(eval_args(tiny_llama_dir, tmp_path / "after", "--cache", str(cache))) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dialbench: error: {cache}: cannot use generation cache (damaged") and err.count("\n") == 1
    assert not (tmp_path / "after").exists()  # checked before any task started


def test_malformed_rows_are_misses_with_a_warning(tiny_llama_dir, warm, tmp_path, capsys):
    cache, warm_dir = warm
    with sqlite3.connect(cache) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM outputs WHERE kind = 'generate' ORDER BY key LIMIT 2")]
        db.execute("UPDATE outputs SET value = '{not json' WHERE key = ?", (keys[0],))
        db.execute("UPDATE outputs SET value = '42' WHERE key = ?", (keys[1],))  # JSON, but not a text
    assert main(eval_args(tiny_llama_dir, tmp_path / "after", "--cache", str(cache))) == 0
    assert "2 cached output(s) are not valid JSON of the expected shape" in capsys.readouterr().err
    assert engine_stats(tmp_path / "after")["generate_computed"] == 2
    assert same_scores(tmp_path / "after", warm_dir)
    assert main(eval_args(tiny_llama_dir, tmp_path / "again", "--cache", str(cache))) == 0  # rows repaired
    assert engine_stats(tmp_path / "again").get("generate_computed", 0) == 0


def cli(*args: str, cwd: Path, preexec_fn) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DIALBENCH_CACHE": str(cwd / "cache-root")}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, preexec_fn=preexec_fn)


@pytest.mark.skipif(not PERMISSIONS_BIND, reason="root without CAP_SETPCAP: file modes cannot bind")
def test_read_only_warm_cache_is_used_read_only(tiny_llama_dir, warm, tmp_path):
    cache, warm_dir = warm
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(cache, shared / "gen.sqlite")
    (shared / "gen.sqlite").chmod(0o444)
    shared.chmod(0o555)
    try:
        result = cli(*eval_args(tiny_llama_dir, tmp_path / "after", "--cache", str(shared / "gen.sqlite")),
                     cwd=tmp_path, preexec_fn=unprivileged())
    finally:
        shared.chmod(0o755)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "read-only for this user" in result.stderr
    assert engine_stats(tmp_path / "after").get("generate_computed", 0) == 0
    assert same_scores(tmp_path / "after", warm_dir)


def test_cache_disk_filling_during_generation_carries_on_uncached(tiny_llama_dir, tmp_path):
    cache = tmp_path / "gen.sqlite"
    args = ["eval", "--model", str(tiny_llama_dir), "--tasks", "convai2_persona", "--limit", "8", "--batch-size", "1",
            "--max-new-tokens", "6", "--output", str(tmp_path / "out"), "--cache", str(cache)]
    result = cli(*args, cwd=tmp_path, preexec_fn=file_size_limit(80 * 1024))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cannot store model outputs" in result.stderr and "carrying on without caching" in result.stderr
    assert json.loads((tmp_path / "out" / "results.json").read_text())["n_examples"]["convai2_persona"] == 8
    rerun = cli(*args[:-4], "--output", str(tmp_path / "again"), "--cache", str(cache), cwd=tmp_path, preexec_fn=None)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    stats = engine_stats(tmp_path / "again")
    assert 0 < stats.get("generate_cached", 0) + stats.get("loglikelihood_cached", 0) < 16  # stored before the disk filled
    assert same_scores(tmp_path / "again", tmp_path / "out")


def test_named_cache_that_cannot_be_created_is_one_line(tiny_llama_dir, tmp_path):
    (tmp_path / "plain").write_text("a file")
    result = cli(*eval_args(tiny_llama_dir, tmp_path / "out", "--cache", str(tmp_path / "plain" / "gen.sqlite")),
                 cwd=tmp_path, preexec_fn=None)
    user_error(result, "plain/gen.sqlite: cannot use generation cache")
