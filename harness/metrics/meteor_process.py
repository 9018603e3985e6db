"""A persistent, crash-proof METEOR 1.5 subprocess (pycocoevalcap's jar in ``-stdio`` mode).

Starting the JVM and loading the paraphrase table costs several seconds; scoring a line costs about
a millisecond. pycocoevalcap starts a JVM per ``Meteor()`` and talks to it line by line with no
timeout, so a newline in the input desynchronises it, a dead JVM hangs the caller, and every
object leaks a process until garbage collection. This wrapper keeps one JVM per process
(:func:`shared_process`), sanitises every line, pipelines writes on a thread, reads with a
timeout, restarts the JVM and retries when it dies or stalls, and kills it (its whole process
group) on ``close()``, on context-manager exit and at interpreter exit.
"""
from __future__ import annotations

import atexit
import collections
import importlib.util
import os
import queue
import signal
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Sequence

from harness.metrics.text import one_line

_LIVE: "weakref.WeakSet[MeteorProcess]" = weakref.WeakSet()
_SHARED: dict[tuple, "MeteorProcess"] = {}
_EOF = object()


class MeteorError(RuntimeError):
    """The METEOR jar could not score the input even after restarting (message says why)."""


def meteor_jar() -> Path:
    """Return the path of pycocoevalcap's ``meteor-1.5.jar`` (its folder also holds the paraphrase table)."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise MeteorError("pycocoevalcap is not installed: METEOR needs its meteor-1.5.jar")
    return Path(list(spec.submodule_search_locations)[0]) / "meteor" / "meteor-1.5.jar"


MAX_TOKENS = 1000
"""Longest segment (whitespace tokens) sent to the jar: its aligner takes ~0.5 s at 1,000 tokens,
~13 s at 5,000 and minutes at 20,000, so longer text is cut (dialogue turns are far shorter)."""


def sanitize(text: str, max_tokens: int = MAX_TOKENS) -> str:
    """Return ``text`` on one line, without METEOR's field separator ``|||`` (which would split
    fields), cut to ``max_tokens`` whitespace tokens."""
    return " ".join(one_line(text.replace("|||", " ")).split(" ")[:max_tokens])


class MeteorProcess:
    """One METEOR JVM answering ``SCORE`` (sufficient statistics) and ``EVAL`` (scores) lines.

    Args:
        language: METEOR language code (``-l``); ``norm`` adds ``-norm`` (lowercase, normalise punctuation).
        timeout: seconds to wait for any one output line once the JVM answers; ``start_timeout``
            covers JVM start-up and the first answer.
        retries: how often a failed request is retried on a fresh JVM before MeteorError.
        command: replaces the java command line (tests use a stand-in that crashes or stalls).
    """

    def __init__(self, language: str = "en", norm: bool = True, timeout: float = 30.0, start_timeout: float = 120.0,
                 retries: int = 2, java: str = "java", memory: str = "2G", command: Sequence[str] | None = None) -> None:
        self.language = language
        self.norm = norm
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.retries = retries
        self.jar = meteor_jar()
        # The parallel collector loads the paraphrase table with ~10% less CPU (measured); GC
        # settings cannot change scores.
        jvm = [java, f"-Xmx{memory}", "-XX:+UseParallelGC", "-Dfile.encoding=UTF-8", "-jar", str(self.jar)]
        meteor_args = ["-", "-", "-stdio", "-l", language] + (["-norm"] if norm else [])
        self.command = list(command) if command else jvm + meteor_args
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._answered = False
        self._lock = threading.Lock()
        self.restarts = 0
        self.ready_after: float | None = None
        """Seconds from starting the JVM to its first answer (start-up plus table loading)."""
        _LIVE.add(self)

    # -- process management -------------------------------------------------------------------
    def start(self) -> "MeteorProcess":
        """Start the JVM if it is not running (returns at once; loading continues in the background)."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        if not self.jar.is_file():
            raise MeteorError(f"METEOR jar not found at {self.jar}")
        env = dict(os.environ, LC_ALL="C")
        try:
            self._proc = subprocess.Popen(self.command, cwd=self.jar.parent, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                          start_new_session=True)
        except FileNotFoundError as err:
            raise MeteorError(f"cannot start METEOR: {err.filename} not found (METEOR 1.5 needs Java)") from None
        self._lines = queue.Queue()
        self._answered = False
        self._started_at = time.monotonic()
        threading.Thread(target=self._read_stdout, args=(self._proc, self._lines), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self._proc,), daemon=True).start()
        return self

    @staticmethod
    def _read_stdout(proc: subprocess.Popen, lines: queue.Queue) -> None:
        try:
            for raw in proc.stdout:
                lines.put(raw.decode("utf-8", "replace").strip())
        except (OSError, ValueError):
            pass
        lines.put(_EOF)

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        try:
            for raw in proc.stderr:
                self._stderr.append(raw.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    @property
    def pid(self) -> int | None:
        """Return the JVM's process id while it runs (tests use it to check for leaks and crashes)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin,):
            try:
                stream.close()
            except OSError:
                pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not time out in practice
            pass
        for stream in (proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass

    def close(self) -> None:
        """Kill the JVM and wait for it; safe to call twice. A later request starts a new JVM."""
        with self._lock:
            self._kill()

    def __enter__(self) -> "MeteorProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # -- requests -------------------------------------------------------------------------------
    def _exchange(self, lines: Sequence[str], expected: int) -> list[str]:
        """Send ``lines`` and return ``expected`` answer lines; raise _Failure on death or stall."""
        self.start()
        proc = self._proc
        payload = "".join(line + "\n" for line in lines).encode("utf-8")

        def write() -> None:
            try:
                proc.stdin.write(payload)
                proc.stdin.flush()
            except (OSError, ValueError):
                pass  # the reader sees EOF and reports the death

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answers = []
        for _ in range(expected):
            wait = self.timeout if self._answered else self.start_timeout
            try:
                item = self._lines.get(timeout=wait)
            except queue.Empty:
                raise _Failure(f"no answer within {wait:.0f} s") from None
            if item is _EOF:
                code = proc.poll()
                raise _Failure(f"the JVM exited (status {code}): {' | '.join(self._stderr) or 'no message'}")
            if not self._answered:
                self.ready_after = time.monotonic() - self._started_at
            self._answered = True
            answers.append(item)
        writer.join(timeout=self.timeout)
        return answers

    def request(self, lines: Sequence[str], expected: int | None = None) -> list[str]:
        """Return the jar's answer lines (one per line unless ``expected`` says how many), restarting
        the JVM and retrying on failure."""
        problem = ""
        with self._lock:
            for _attempt in range(self.retries + 1):
                try:
                    return self._exchange(lines, len(lines) if expected is None else expected)
                except _Failure as failure:
                    problem = str(failure)
                    self._kill()
                    self.restarts += 1
        raise MeteorError(f"METEOR failed {self.retries + 1} times: {problem}")

    def statistics(self, pairs: Sequence[tuple[str, Sequence[str]]], chunk_size: int = 500,
                   max_tokens: int = MAX_TOKENS) -> list[list[float]]:
        """Return the jar's sufficient statistics (``SCORE`` line) of each (hypothesis, references) pair.

        The best-matching reference is chosen by the jar. Chunks only bound how much one retry redoes.
        """
        out: list[list[float]] = []
        for start in range(0, len(pairs), max(1, chunk_size)):
            lines = []
            for hyp, refs in pairs[start:start + chunk_size]:
                fields = ["SCORE"] + [sanitize(r, max_tokens) for r in refs] + [sanitize(hyp, max_tokens)]
                lines.append(" ||| ".join(fields))
            for answer in self.request(lines):
                try:
                    out.append([float(x) for x in answer.split()])
                except ValueError:
                    raise MeteorError(f"unexpected METEOR answer {answer[:80]!r}") from None
        return out

    def evaluate(self, stats: Sequence[Sequence[float]]) -> tuple[list[float], float]:
        """Return the jar's own (segment scores, aggregate score) for statistics (``EVAL``): used by
        tests to prove :func:`meteor_from_stats` reproduces the jar."""
        line = "EVAL ||| " + " ||| ".join(" ".join(repr(float(x)) for x in row) for row in stats)
        answers = [float(a) for a in self.request([line], expected=len(stats) + 1)]
        return answers[:-1], answers[-1]


class _Failure(Exception):
    """Internal: one attempt failed (death or stall); the caller restarts and retries."""


def shared_process(language: str = "en", norm: bool = True) -> MeteorProcess:
    """Return the process-wide METEOR JVM for these settings (one per run, started on first use)."""
    key = (language, norm)
    proc = _SHARED.get(key)
    if proc is None:
        proc = _SHARED[key] = MeteorProcess(language=language, norm=norm)
    return proc


@atexit.register
def close_all() -> None:
    """Kill every METEOR JVM this interpreter started (registered with atexit)."""
    for proc in list(_LIVE):
        proc.close()
    _SHARED.clear()
