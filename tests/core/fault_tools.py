"""Helpers of the fault-injection tests: run the CLI in a child where a fault is real.

CI runs as root, which ignores file modes; ``unprivileged()`` drops the capabilities that let root
ignore them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) from the child's bounding set before
it starts, so the child (still uid 0, owner of its files) is bound by ``chmod`` like any user.
``file_size_limit()`` gives the child a full disk through RLIMIT_FSIZE (writes fail with EFBIG
rather than ENOSPC, through the same OSError paths); neither needs a mount or a privilege.
"""
from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "tasks" / "samples"
QUICK = ("--tasks", "open_dialogue", "--systems", "copy_last")
"""The cheapest real run: a bundled sample, a baseline without a model, a profile without Java."""
PROGRESS = "[dialbench] copy_last on"
"""What the runner prints when a task starts: absent means no work was done."""
DAC_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
PR_CAPBSET_DROP = 24


def _drop_dac_caps() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in DAC_CAPS:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_caps() -> bool:
    try:
        return subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_drop_dac_caps).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


PERMISSIONS_BIND = os.geteuid() != 0 or (sys.platform == "linux" and _can_drop_caps())
needs_permissions = pytest.mark.skipif(not PERMISSIONS_BIND, reason="root without CAP_SETPCAP: file modes cannot bind")


def unprivileged():
    """Return a preexec_fn under which file modes bind (None when they already do: not root)."""
    return _drop_dac_caps if os.geteuid() == 0 else None


def file_size_limit(limit: int):
    """Return a preexec_fn giving the child a disk that is full beyond ``limit`` bytes per file."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def dialbench(*args: str, cwd: Path, preexec_fn=None, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DIALBENCH_CACHE": str(cwd / "cache"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=preexec_fn)


def user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Assert exit 2 with one ``dialbench: error:`` line holding every fragment; return that line."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("dialbench: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
