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
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness.cachedir import cache_root
from harness.errors import UserError

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


class GenerationCache:
    """Key -> JSON value store; ``get_many`` / ``put_many`` work a batch at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                "model TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL)"
            )
        except (sqlite3.DatabaseError, OSError) as err:
            raise UserError(f"{self.path}: cannot open generation cache ({err}); delete it or pass --no-cache") from None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return the cached values of those ``keys`` that are present."""
        keys = list(keys)
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, value FROM outputs WHERE key IN ({marks})", chunk)
            found.update((key, json.loads(value)) for key, value in rows)
        return found

    def put_many(self, kind: str, model: str, values: Mapping[str, Any]) -> None:
        """Store ``values`` (key -> JSON value) in one transaction; existing keys keep their value."""
        now = time.time()
        rows = [(key, kind, model, canonical_json(value), now) for key, value in values.items()]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR IGNORE INTO outputs VALUES (?, ?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0])

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        self._db.close()
