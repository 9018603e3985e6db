"""One writer per run directory: a second identical run waits for the first, then reuses its work.

Two processes computing the same run directory would each generate everything and then overwrite
each other's files. An advisory ``flock`` on ``RUN_DIR/.dialbench.lock`` serialises them: the second
says whom it waits for, and once the first is done it finds the finished tasks (and the filled
generation cache) and computes nothing again. The lock vanishes with its process, so a ``kill -9``
never leaves a stale lock behind; the file itself stays (it is empty apart from the holder's pid).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from harness.errors import UserError
from harness.jsonio import os_reason

LOCK_NAME = ".dialbench.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; runs there are not serialised
    fcntl = None  # type: ignore[assignment]


@contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock for the duration, waiting (with a message) while another has it."""
    if fcntl is None:
        yield
        return
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise UserError(f"{path}: cannot create the run directory's lock ({os_reason(err)})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            if not _alive(holder):  # a forked child of a killed run still holds the lock: not a writer
                print(f"[dialbench] {run_dir}: lock left by a process of the stopped run {holder}; taking over",
                      file=sys.stderr, flush=True)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
                yield
                return
            print(f"[dialbench] {run_dir} is being written by another dialbench process (pid {holder}); "
                  "waiting for it to finish, then reusing its results", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


def _alive(pid: str) -> bool:
    """Return True unless ``pid`` names a process that no longer exists."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError, OverflowError):
        return True
    return True
