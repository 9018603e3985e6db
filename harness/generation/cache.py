"""Persistent cache of model outputs (generations and log-likelihoods) in one SQLite file (WAL mode).

Why SQLite: a killed run must lose at most the batch in flight, several processes may share one cache
(two terminals, a sweep), and a lookup must not need the model. Each batch is written in one
transaction as soon as it finishes, so after ``kill -9`` the file holds every finished batch and
nothing half-written; WAL lets readers and one writer work at the same time.

The key is a SHA-256 over (kind, model fingerprint, normalised decoding config, prompt), never over
batch size, batch position or process count, so any run that asks the same question of the same
model finds the answer. Unlike lm-evaluation-harness' ``CachingLM`` (keyed without the model), the
fingerprint is part of every key. Sampled generations are cached only with a fixed seed (the engine
refuses to cache otherwise).

The cache only ever saves work, so its faults never cost a run: a damaged file (found at open by
``PRAGMA quick_check``) is skipped with a warning, or is a UserError when the user named the file
(``--cache``); a row that does not parse or has the wrong shape is a miss, with a warning; a file the
user may read but not write is used read-only; a disk that fills up mid-run stops the caching, with
a warning, while the finished batch stays in memory and reaches the results.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from harness.cachedir import cache_root
from harness.errors import UserError
from harness.jsonio import warn

COLUMNS = ("key", "kind", "model", "value", "created")

VALUE_SHAPES: dict[str, Callable[[Any], bool]] = {
    "generate": lambda v: isinstance(v, str),
    "loglikelihood": lambda v: (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float))
                                                                             and not isinstance(x, bool) for x in v)),
}
"""What a stored value of each kind must look like; anything else is treated as a miss."""


def default_cache_path() -> Path:
    """Return the generation cache file used when a run names none."""
    return cache_root() / "generations.sqlite"


def canonical_json(value: Any) -> str:
    """Return compact JSON with sorted keys: equal values always hash alike."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def make_key(kind: str, fingerprint: str, config: Mapping[str, Any], prompt: Any) -> str:
    """Return the cache key (hex SHA-256) of one request; ``prompt`` is any JSON value."""
    payload = canonical_json({"kind": kind, "model": fingerprint, "config": config, "prompt": prompt})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class _Unusable(Exception):
    """The cache file cannot serve this run (damaged, wrong schema, not creatable)."""


class GenerationCache:
    """Key -> JSON value store; ``get_many`` / ``put_many`` work a batch at a time.

    ``explicit`` says whether the user named this file (default: it is not the default path); a
    damaged explicit cache stops the run, a damaged default one is skipped. ``usable`` and
    ``writable`` say what is left of it after a fault.
    """

    def __init__(self, path: str | Path, *, explicit: bool | None = None) -> None:
        self.path = Path(path)
        self.explicit = explicit if explicit is not None else self.path != default_cache_path()
        self.usable = True
        self.writable = True
        self._db: sqlite3.Connection | None = None
        try:
            self._open()
        except _Unusable as err:
            self._drop()
            if self.explicit:
                raise UserError(f"{self.path}: cannot use generation cache ({err}); move it away or pass --no-cache") from None
            warn(f"{self.path}: {err}; running without the generation cache (move the file away to start a new one)")
            self.usable = self.writable = False

    def _open(self) -> None:
        exists = os.path.lexists(self.path)
        if exists and not stat.S_ISREG(os.stat(self.path).st_mode):
            raise _Unusable("not a regular file")
        folder = self.path.parent
        if not exists:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise _Unusable(f"cannot create it ({err.strerror})") from None
        self.writable = os.access(self.path if exists else folder, os.W_OK) and os.access(folder, os.W_OK)
        if not self.writable and not exists:
            raise _Unusable(f"cannot create it ({folder} is not writable)")
        try:
            if self.writable:
                self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(f"CREATE TABLE IF NOT EXISTS outputs ({COLUMNS[0]} TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                                 "model TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL)")
            else:
                self._db = self._connect_read_only()
            self._check()
        except sqlite3.DatabaseError as err:
            raise _Unusable(f"damaged ({' '.join(str(err).split())})") from None
        if not self.writable:
            warn(f"{self.path}: generation cache is read-only for this user; using the outputs it holds, "
                 "storing no new ones")

    def _connect_read_only(self) -> sqlite3.Connection:
        """Open read-only; a WAL file whose folder we cannot write needs ``immutable`` (nobody else
        can be writing it either, or we could too)."""
        uri = self.path.resolve().as_uri()
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            db = sqlite3.connect(f"{uri}?{flags}", uri=True, timeout=60.0, isolation_level=None)
            try:
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()
        raise sqlite3.DatabaseError("cannot be opened read-only")

    def _check(self) -> None:
        """Detect damaged pages and a foreign schema now (milliseconds per MB), not mid-run."""
        assert self._db is not None
        verdict = [row[0] for row in self._db.execute("PRAGMA quick_check(1)")]
        if verdict != ["ok"]:
            raise _Unusable(f"damaged ({' '.join(' '.join(map(str, verdict)).split())[:200]})")
        columns = tuple(row[1] for row in self._db.execute("PRAGMA table_info(outputs)"))
        if columns != COLUMNS:
            raise _Unusable(f"not a dialbench generation cache (table 'outputs' has columns {', '.join(columns) or 'none'})")

    def _drop(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _fault(self, doing: str, err: Exception) -> None:
        """Stop using (or, when storing, writing) the cache after an error, saying so once."""
        if doing == "store":
            warn(f"{self.path}: cannot store model outputs ({err}); carrying on without caching new ones")
            self.writable = False
        else:
            warn(f"{self.path}: cannot read the generation cache ({err}); carrying on without it")
            self.usable = self.writable = False
            self._drop()

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return the cached values of those ``keys`` that are present and well-formed."""
        keys = list(keys)
        found: dict[str, Any] = {}
        if not self.usable or self._db is None:
            return found
        bad: list[str] = []
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, kind, value in self._db.execute(f"SELECT key, kind, value FROM outputs WHERE key IN ({marks})", chunk):
                    parsed = _parse(kind, value)
                    if parsed is _BAD:
                        bad.append(key)
                    else:
                        found[key] = parsed
        except sqlite3.DatabaseError as err:
            self._fault("read", err)
            return {}
        if bad:
            warn(f"{self.path}: {len(bad)} cached output(s) are not valid JSON of the expected shape; "
                 "computing them again")
            self._forget(bad)
        return found

    def _forget(self, keys: list[str]) -> None:
        """Delete malformed rows so the recomputed values can take their place."""
        if not self.writable or self._db is None:
            return
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM outputs WHERE key = ?", [(k,) for k in keys])
        except sqlite3.DatabaseError as err:
            self._fault("store", err)

    def put_many(self, kind: str, model: str, values: Mapping[str, Any]) -> None:
        """Store ``values`` (key -> JSON value) in one transaction; existing keys keep their value.

        A failure (full disk, read-only file) is a warning: the caller keeps its values either way."""
        if not self.writable or self._db is None:
            return
        now = time.time()
        rows = [(key, kind, model, canonical_json(value), now) for key, value in values.items()]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR IGNORE INTO outputs VALUES (?, ?, ?, ?, ?)", rows)
        except (sqlite3.DatabaseError, OSError) as err:
            self._fault("store", err)

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0])

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        self._drop()


_BAD = object()


def _parse(kind: str, value: Any) -> Any:
    """Return the stored value, or ``_BAD`` if it is not JSON or not the shape its kind needs."""
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError, RecursionError):
        return _BAD
    shape = VALUE_SHAPES.get(kind)
    return parsed if shape is None or shape(parsed) else _BAD
