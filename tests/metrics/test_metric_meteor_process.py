"""The persistent METEOR subprocess: hostile input, crashes, stalls, and no leaked processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from harness.metrics.meteor_process import MeteorError, MeteorProcess, sanitize, shared_process
from tests.metrics.metric_helpers import child_pids, needs_java


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid not in child_pids():
            return True
        time.sleep(0.05)
    return False


def test_sanitize_keeps_one_line_and_fields():
    assert sanitize("a\nb\tc\r\nd ||| e\x00f") == "a b c d e f"
    assert sanitize(" ".join(["w"] * 5000), max_tokens=1000).count("w") == 1000


@needs_java
def test_real_jar_survives_hostile_lines():
    proc = shared_process()
    long_line = " ".join(f"w{i % 300}" for i in range(20000))  # cut to 1000 tokens, else the aligner takes minutes
    pairs = [("a b\nc", ["a b c"]), ("a\tb c", ["a b c"]), ("héllo wörld 你好 😀", ["hello world"]),
             ("", ["x"]), ("x", [""]), ("a ||| b", ["a b"]), (long_line, [long_line]), ("a b c", ["a b c"])]
    started = time.monotonic()
    stats = proc.statistics(pairs)
    assert time.monotonic() - started < 60
    assert len(stats) == len(pairs) and all(len(row) == 23 for row in stats)
    assert stats[0] == stats[1] == stats[7]  # newline and tab are plain spaces
    assert stats[6][0] == 1000  # the long hypothesis reached the jar cut to 1000 tokens
    assert stats[3][0] == 0 and stats[4][1] == 0  # empty hypothesis / empty reference are scored, not fatal


def test_crash_is_restarted_and_retried(fake_meteor):
    proc = fake_meteor("crash-after 2", timeout=10, start_timeout=10)
    stats = proc.statistics([(f"w{i} x", ["r"]) for i in range(5)], chunk_size=5)
    assert [row[0] for row in stats] == [2.0] * 5
    assert proc.restarts == 1
    pid = proc.pid
    proc.close()
    assert gone(pid) and not child_pids("fake_meteor")


def test_stall_times_out_and_leaves_no_process(fake_meteor):
    proc = fake_meteor("hang", timeout=1, start_timeout=1, retries=1)
    started = time.monotonic()
    with pytest.raises(MeteorError, match="no answer within"):
        proc.statistics([("a", ["a"])])
    assert time.monotonic() - started < 15
    assert proc.restarts == 2
    assert not child_pids("fake_meteor")


def test_context_manager_closes(fake_meteor):
    with fake_meteor("ok") as proc:
        assert proc.statistics([("a b", ["a"])])[0][0] == 2.0
        pid = proc.pid
    assert pid is not None and gone(pid)


def test_atexit_kills_process(tmp_path):
    from tests.metrics.metric_helpers import FAKE_METEOR

    script = tmp_path / "fake_meteor.py"
    script.write_text(FAKE_METEOR)
    program = textwrap.dedent(f"""
        import sys
        from harness.metrics.meteor_process import MeteorProcess
        proc = MeteorProcess(command=[sys.executable, {str(script)!r}, "ok", {str(tmp_path / 'm')!r}])
        proc.statistics([("a", ["a"])])
        print(proc.pid, flush=True)
    """)  # exits without close(): the atexit hook must kill the child
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    pid = int(out.stdout.strip())
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@needs_java
@pytest.mark.slow
def test_real_jar_killed_mid_run_restarts_without_leaks():
    before = child_pids("java")
    proc = MeteorProcess()
    pairs = [("the cat sat on the mat", ["the cat was on the mat"])] * 50
    first = proc.statistics(pairs)
    os.kill(proc.pid, signal.SIGKILL)  # induced crash
    again = proc.statistics(pairs)
    assert again == first and proc.restarts == 1
    proc.close()
    time.sleep(0.2)
    assert child_pids("java") == before
