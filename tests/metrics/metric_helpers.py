"""Helpers for the metric tests: Java/METEOR availability, child-process counting, a fake METEOR jar."""
from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

ESCONV = Path(__file__).resolve().parents[3] / "shared" / "data" / "esconv" / "valid.txt"


def java_ready() -> bool:
    from harness.metrics.meteor_process import meteor_jar

    try:
        return shutil.which("java") is not None and meteor_jar().is_file()
    except RuntimeError:
        return False


needs_java = pytest.mark.skipif(not java_ready(), reason="Java or pycocoevalcap's METEOR jar is missing")


def child_pids(name: str | None = None) -> set[int]:
    """Return the pids of this test process's live descendants (optionally whose command mentions ``name``)."""
    out = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if name is None or any(name in part for part in child.cmdline()):
                out.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return out


FAKE_METEOR = textwrap.dedent('''
    """A stand-in for the METEOR jar: answers SCORE lines with fixed statistics.

    Behaviour from argv: "crash-after N" exits after N answers (once: a marker file remembers),
    "hang" never answers.
    """
    import os, sys, time
    mode = sys.argv[1]
    marker = sys.argv[2]
    answered = 0
    for line in sys.stdin:
        if mode == "hang":
            time.sleep(3600)
        if mode.startswith("crash-after") and answered == int(mode.split()[1]) and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        n = len(line.split("|||")[-1].split())
        print(f"{n}.0 " + "0.0 " * 21 + "0.0", flush=True)
        answered += 1
''')


