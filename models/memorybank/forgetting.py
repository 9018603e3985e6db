"""Ebbinghaus-style forgetting of a MemoryBank store (released ``forget_memory.py``), off by default.

Each exchange carries ``memory_strength`` S (1 when absent), ``last_recall_date`` (its own date when
absent) and ``memory_id``. At an evaluation date, t = days since the last recall and the retention is
``paper``: R = exp(-t / S) (the paper: stronger memories last longer) or ``released``: the released
``exp(-t/5*S)``, which Python reads as exp(-t * S / 5), so stronger memories decay faster. An
exchange is dropped when a seeded uniform draw exceeds R; a date whose every exchange is dropped
loses its summary too (and its daily personality). Retrieval strengthens what it returns: S + 1 and
the recall date reset to today (``strengthen``).
"""
from __future__ import annotations

import math
import random
from typing import Iterable

from harness.errors import UserError
from models.memorybank.store import MemoryBankStore, days_between, memory_id

RETENTIONS = ("off", "paper", "released")


def retention(days: float, strength: float, formula: str) -> float:
    """Return the probability of keeping a memory ``days`` after its last recall."""
    if formula == "paper":
        return math.exp(-days / strength)
    if formula == "released":
        return math.exp(-days / 5 * strength)
    raise UserError(f"memorybank forgetting: unknown retention '{formula}'; valid: paper, released")


def ensure_metadata(record: dict, user: str) -> None:
    """Give every exchange of a user record its strength, recall date and id, as the released loader does."""
    for date, rows in record.get("history", {}).items():
        for index, row in enumerate(rows):
            row.setdefault("memory_strength", 1)
            row.setdefault("last_recall_date", date)
            row.setdefault("memory_id", memory_id(user, date, index))


def forget(record: dict, user: str, now: str, formula: str, seed: int = 0) -> list[str]:
    """Drop forgotten exchanges of a user record at date ``now`` in place; return the dropped memory ids.

    The draws come from ``random.Random(f"{seed}:{user}")`` in file order, so a run is reproducible and
    one user's result does not depend on which other users are in the store.
    """
    if formula == "off":
        return []
    ensure_metadata(record, user)
    draw = random.Random(f"{seed}:{user}")
    dropped: list[str] = []
    for date in list(record.get("history", {})):
        kept = []
        for row in record["history"][date]:
            days = max(0, days_between(str(row["last_recall_date"]), now))
            if draw.random() > retention(days, float(row["memory_strength"]), formula):
                dropped.append(str(row["memory_id"]))
            else:
                kept.append(row)
        record["history"][date] = kept
        if not kept:
            drop_date(record, date)
    return dropped


def drop_date(record: dict, date: str) -> None:
    """Remove a date's history together with its summary and daily personality."""
    for section in ("history", "summary", "personality"):
        if isinstance(record.get(section), dict):
            record[section].pop(date, None)


def strengthen(record: dict, user: str, ids: Iterable[str], today: str) -> int:
    """Add 1 to the strength of each retrieved exchange and set its recall date to ``today``.

    ``ids`` are dialbench item ids (``DATE#TURN`` with TURN the exchange's index in the store as
    read, i.e. its ``memory_id``, so it still names the same exchange after others were forgotten);
    summary ids are skipped, as in the released code. Returns how many exchanges were strengthened.
    """
    ensure_metadata(record, user)
    wanted = set()
    for item_id in ids:
        date, _, turn = item_id.partition("#")
        if turn.isdigit():
            wanted.add(memory_id(user, date, int(turn)))
    count = 0
    for rows in record.get("history", {}).values():
        for row in rows:
            if row["memory_id"] in wanted:
                row["memory_strength"] = row["memory_strength"] + 1
                row["last_recall_date"] = today
                count += 1
    return count


def store_forget(store: MemoryBankStore, now: str, formula: str, seed: int = 0) -> dict[str, list[str]]:
    """Apply ``forget`` to every user of a store (in place; call it on ``store.copy()``)."""
    return {user: forget(store.user(user), user, now, formula, seed) for user in store.users()}
