"""MemoryBank readers: the memory store JSON, the probing-question JSON lines and dialbench's gold key.

Store (systems.md §3.1): a JSON object keyed by user name; each value has ``history`` ``{date:
[{query, response, +optional memory_strength, last_recall_date, memory_id, source}]}`` and optional
``name``, ``summary`` ``{date: {content}}``, ``personality`` ``{date: str}``, ``overall_history``,
``overall_personality`` and ``meta_information``. Published keys carry stray spaces (" Jason "):
keys are trimmed and matched trimmed, and two keys equal after trimming are an error.

Probing questions: JSON lines ``{user_name: [question, ...]}``. Gold key (dialbench's own, for
automatic scoring): JSON lines ``{user, qid, evidence: [{date, turn}], answer, keywords, type}``
where ``qid`` indexes the user's question list and ``turn`` the date's exchange list (0-based).

Each user becomes one Dialogue: its exchanges as dated turns, its MemoryStore (one MemoryItem per
exchange, id ``YYYY-MM-DD#TURN``, text ``User: q\\nAI: r``; one per daily summary, id
``YYYY-MM-DD#summary``), and in ``meta`` the questions and, when a gold key is given, their gold.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.jsonio import iter_jsonl
from harness.records import BOT, USER, Dialogue, MemoryItem, MemoryStore, SourceRef, Turn
from tasks.formats import strict
from tasks.formats.strict import Where

ANSWER_TYPES = ("recall-fact", "recall-recommendation", "preference", "yes-no", "temporal", "unanswerable")
CJK = re.compile(r"[\u3400-\u9fff]")


def locate(path: Path, questions: str | None, gold: str | None) -> tuple[Path, Path, Path | None]:
    """Return ``(store, questions, gold)`` paths for PATH (the store file or the folder holding it).

    Companion files are found by their published names: ``memory_bank_X.json`` pairs with
    ``probing_questions_X.jsonl`` and (dialbench's key) ``memorybank_X_gold.jsonl``; otherwise the only
    ``probing_questions*.jsonl`` / ``*_gold.jsonl`` in the folder. ``gold="none"`` disables the key.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.is_dir():
        stores = sorted(path.glob("memory_bank_*.json"))
        if len(stores) != 1:
            raise UserError(f"{path}: expected one memory_bank_*.json in the folder, found {len(stores)}")
        path = stores[0]
    folder, suffix = path.parent, path.stem.removeprefix("memory_bank")
    questions_path = Path(questions) if questions else _beside(folder, f"probing_questions{suffix}.jsonl", "probing_questions*.jsonl")
    if questions_path is None:
        raise UserError(f"{path}: no probing questions found beside it (expected probing_questions{suffix}.jsonl; "
                        "or pass the task option questions=PATH)")
    if gold == "none":
        gold_path = None
    elif gold:
        gold_path = Path(gold)
    else:
        gold_path = _beside(folder, f"memorybank{suffix}_gold.jsonl", "*_gold.jsonl")
    return path, questions_path, gold_path


def _beside(folder: Path, name: str, pattern: str) -> Path | None:
    if (folder / name).is_file():
        return folder / name
    found = sorted(folder.glob(pattern))
    return found[0] if len(found) == 1 else None


def _summary_text(value: Any, where: Where, field: str) -> str:
    if isinstance(value, dict):
        return strict.get(value, "content", str, where, f"{field}.")
    return strict.check_type(value, str, where, field)


def _user(key: str, raw: Any, where: Where, source: str) -> Dialogue:
    """Return one user's dialogue and memory store from a store entry."""
    user = key.strip()
    strict.check_type(raw, dict, where, user)
    history = strict.get(raw, "history", dict, where, f"{user}.")
    turns: list[Turn] = []
    items: list[MemoryItem] = []
    for date, exchanges in history.items():
        at = where.at(strict.find_line(source, where.line or 1, f'"{date}"'))
        strict.check_date(date, at, f"{user}.history")
        strict.check_type(exchanges, list, at, f"{user}.history.{date}")
        for index, exchange in enumerate(exchanges):
            prefix = f"{user}.history.{date}[{index}]."
            query = strict.get(exchange, "query", str, at, prefix).strip()
            response = strict.get(exchange, "response", str, at, prefix).strip()
            item_id = f"{date}#{index}"
            extra = {k: v for k, v in exchange.items() if k not in ("query", "response")}
            items.append(MemoryItem(item_id, f"User: {query}\nAI: {response}", date, "exchange",
                                    {"query": query, "response": response, **extra}))
            turns.append(Turn(USER, query, name=user, date=date, session=date, meta={"item": item_id}))
            turns.append(Turn(BOT, response, name="AI", date=date, session=date, meta={"item": item_id}))
    if not items:
        raise where.error(f"{user}.history", "empty dialogue (no exchanges)")
    summaries = {}
    for date, value in strict.get(raw, "summary", dict, where, f"{user}.", optional=True, default={}).items():
        strict.check_date(date, where, f"{user}.summary")
        content = _summary_text(value, where, f"{user}.summary.{date}").strip()
        if content:
            summaries[date] = content
            items.append(MemoryItem(f"{date}#summary", content, date, "summary"))
    personality = strict.get(raw, "personality", dict, where, f"{user}.", optional=True, default={})
    meta = {
        "key": key,
        "name": strict.get(raw, "name", str, where, f"{user}.", optional=True, default=user).strip(),
        "personality": dict(personality),
        "overall_history": strict.get(raw, "overall_history", str, where, f"{user}.", optional=True, default=""),
        "meta_information": strict.get(raw, "meta_information", dict, where, f"{user}.", optional=True, default={}),
    }
    profile = strict.get(raw, "overall_personality", str, where, f"{user}.", optional=True, default="")
    store = MemoryStore(user=user, items=tuple(items), summaries=summaries, profile=profile, meta=meta)
    return Dialogue(id=user, turns=tuple(turns), memory=store, source=SourceRef(str(where.path), where.line))


def load_store(path: Path) -> list[Dialogue]:
    """Return one Dialogue per user of a memory store file (keys trimmed, duplicates refused)."""
    source, document = strict.load_json(path)
    strict.check_type(document, dict, Where(path, 1), "document")
    if not document:
        raise Where(path, 1).error("document", "no users")
    entries = strict.top_level(source, document)
    strict.unique(((key.strip(), Where(path, line)) for key, line in entries), "user")
    return [_user(key, document[key], Where(path, line), source) for key, line in entries]


def load_questions(path: Path, users: set[str]) -> dict[str, tuple[tuple[str, int], ...]]:
    """Return ``{user: ((question, line), ...)}``; unknown users and repeated users are errors."""
    questions: dict[str, tuple[tuple[str, int], ...]] = {}
    seen: list[tuple[str, Where]] = []
    for line, row in iter_jsonl(path):
        where = Where(path, line)
        strict.check_type(row, dict, where, "record")
        if not row:
            raise where.error("record", "empty object (expected {user: [questions]})")
        for key, value in row.items():
            user = key.strip()
            if user not in users:
                raise where.error("user", f"unknown user '{key}' (not in the memory store)")
            seen.append((user, where))
            strict.unique(seen, "user")
            listed = strict.strings(value, where, user)
            for index, question in enumerate(listed):
                if not question.strip():
                    raise where.error(f"{user}[{index}]", "empty question")
            questions[user] = tuple((q.strip(), line) for q in listed)
    return questions


def load_gold(path: Path, dialogues: dict[str, Dialogue], questions: dict[str, tuple]) -> dict[tuple[str, int], dict]:
    """Return ``{(user, qid): gold}`` after checking each row against the store and the questions."""
    gold: dict[tuple[str, int], dict] = {}
    seen: list[tuple[str, Where]] = []
    for line, row in iter_jsonl(path):
        where = Where(path, line)
        user = strict.get(row, "user", str, where).strip()
        if user not in dialogues:
            raise where.error("user", f"unknown user '{user}' (not in the memory store)")
        qid = strict.get(row, "qid", int, where)
        if not 0 <= qid < len(questions.get(user, ())):
            raise where.error("qid", f"{qid} is not a question index of '{user}' (has {len(questions.get(user, ()))})")
        seen.append((f"{user}#{qid}", where))
        strict.unique(seen, "qid")
        dates = {}
        for item in dialogues[user].memory.items:  # type: ignore[union-attr]
            if item.kind == "exchange":
                dates[item.date] = dates.get(item.date, 0) + 1
        evidence = []
        for index, ev in enumerate(strict.get(row, "evidence", list, where)):
            date = strict.check_date(strict.get(ev, "date", str, where, f"evidence[{index}]."), where, f"evidence[{index}].date")
            turn = strict.get(ev, "turn", int, where, f"evidence[{index}].")
            if date not in dates:
                raise where.error(f"evidence[{index}].date", f"'{user}' has no history on {date}")
            if not 0 <= turn < dates[date]:
                raise where.error(f"evidence[{index}].turn", f"{turn} is out of range ({dates[date]} exchanges on {date})")
            evidence.append(f"{date}#{turn}")
        answer_type = strict.get(row, "type", str, where)
        if answer_type not in ANSWER_TYPES:
            raise where.error("type", f"unknown type '{answer_type}'; valid: {', '.join(ANSWER_TYPES)}")
        gold[(user, qid)] = {
            "answer": strict.text(row, "answer", where),
            "evidence": tuple(evidence),
            "keywords": strict.strings(strict.get(row, "keywords", list, where), where, "keywords", allow_empty=True),
            "answer_type": answer_type,
        }
    return gold


def detect_language(dialogues: list[Dialogue]) -> str:
    """Return ``zh`` when the store's text is mostly Chinese, else ``en``."""
    sample = "".join(t.text for d in dialogues for t in d.turns[:20])
    return "zh" if len(CJK.findall(sample)) > 0.2 * max(1, len(sample.replace(" ", ""))) else "en"
