"""Dolphin / COMEDY readers: dialbench JSON lines, SFT and DPO JSON lines, and the episode test JSON.

**dialbench JSON lines** (``dialbench``; our own format for evaluating the three COMEDY tasks with
references on your own data). One episode (one user-bot relationship) per line::

    {"episode": "e1",                       # unique id, string
     "username": "林晓", "botname": "小暖",  # the two speakers' names
     "sessions": [                           # in time order, at least one
        {"session": "1",                     # unique within the episode
         "history": ["林晓：今天好累", "小暖：怎么啦？"],   # or [{"speaker": "user"|"bot", "text": ...}]
         "memory": ["林晓最近加班很累"]}],       # optional: gold session memory (Task 1 reference)
     "compressed_memory": "用户描述###关系描述###共同事件",  # optional: Task 2 reference, Task 3 input
     "responses": [                          # optional: Task 3 probes
        {"session": "16", "history": [...], "response": "gold reply of the bot"}]}

A string utterance must start with ``username`` or ``botname`` followed by "：" or ":"; an object
names its speaker as ``user``/``bot`` or by name. Any other speaker is an error.

**SFT** (``sft``, COMEDY ``main.py``): ``{"text": "[BOS][Human]\\n...[EOS][BOS][AI]\\n...[EOS][END]"}``
(``[BOS]``/``[EOS]`` are literal ``<s>``/``</s>``; a trailing ``[END]`` is dropped) or
``{"messages": [{"role", "content", "lossmask"}]}`` (``main.chat.py``; role ``user`` is the human,
any assistant role the AI). The last AI segment is the target, the human segment before it the
instruction. **DPO** (``dpo``): ``{"prompt", "chosen" | "ans", "rejected"}``; the preference pairs
are Task-3 only in the paper. **Episodes** (``episodes``, the unreleased ``test_new.json`` as
``comedy_test.py`` reads it): ``{episode: {session: {"sub_history": [...], "username", "botname"}}}``;
it has no references.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.jsonio import iter_jsonl, read_text
from harness.records import BOT, USER, Dialogue, SourceRef, Turn
from tasks.formats import strict
from tasks.formats.strict import Where

SEGMENT = re.compile(r"<s>\s*\[(Human|AI)\]\n?(.*?)</s>", re.DOTALL)
NAME_PREFIX = re.compile(r"^\s*([^：:\n]{1,40})[：:]\s*(.*)$", re.DOTALL)
KINDS = ("summarization", "compression", "response")


def detect(path: Path) -> str:
    """Return the format from the content: the first JSON line's fields, or ``episodes`` for a JSON object."""
    text = read_text(path)
    first = next((line for line in text.split("\n") if line.strip()), "")
    keys = re.findall(r'"([a-z_]+)"\s*:', first)
    if "episode" in keys or "sessions" in keys:
        return "dialbench"
    if "text" in keys[:1] or "messages" in keys[:1]:
        return "sft"
    if "prompt" in keys or "rejected" in keys:
        return "dpo"
    if text.lstrip().startswith("{") and "sub_history" in text:
        return "episodes"
    return "dialbench"


def classify(target: str) -> str:
    """Return which COMEDY task an SFT/DPO row trains, judged from its target text.

    Task 2 outputs three ``###``-separated parts; Task 1 outputs ``【a|b|c】`` items; everything else
    is a Task-3 reply. (SFT files mix the tasks and carry no task field.)
    """
    if target.count("###") >= 2:
        return "compression"
    if "|" in target or target.lstrip().startswith("【"):
        return "summarization"
    return "response"


def _utterance(raw: Any, names: dict[str, str], where: Where, field: str, lenient: bool, index: int) -> Turn:
    """Return one history utterance; the speaker comes from the object or the ``name：`` prefix."""
    if isinstance(raw, dict):
        speaker = strict.get(raw, "speaker", str, where, f"{field}.")
        role = names.get(speaker) or {"user": USER, "bot": BOT}.get(speaker)
        if role is None:
            raise where.error(f"{field}.speaker", f"unknown speaker '{speaker}' (expected user, bot or {', '.join(names)})")
        return Turn(role, strict.text(raw, "text", where, f"{field}."), name=speaker)
    strict.check_type(raw, str, where, field)
    match = NAME_PREFIX.match(raw)
    if match and match.group(1).strip() in names:
        name = match.group(1).strip()
        return Turn(names[name], match.group(2).strip(), name=name)
    if lenient:  # the inferred test format: unprefixed utterances alternate, user first
        return Turn(USER if index % 2 == 0 else BOT, raw.strip())
    expected = " or ".join(f"'{name}：'" for name in names)
    raise where.error(field, f"unknown speaker in '{raw[:30]}' (expected a {expected} prefix)")


def _history(raw: Any, names: dict[str, str], where: Where, field: str, session: str, lenient: bool = False) -> tuple[Turn, ...]:
    strict.check_type(raw, list, where, field)
    if not raw:
        raise where.error(field, "empty dialogue")
    turns = []
    for index, item in enumerate(raw):
        turn = _utterance(item, names, where, f"{field}[{index}]", lenient, index)
        if not turn.text:
            raise where.error(f"{field}[{index}]", "empty text")
        turns.append(Turn(turn.speaker, turn.text, turn.name, session=session))
    return tuple(turns)


def _episode(row: Any, where: Where) -> Dialogue:
    """Return one episode of the dialbench format."""
    episode = strict.text(row, "episode", where)
    username, botname = strict.text(row, "username", where), strict.text(row, "botname", where)
    names = {username: USER, botname: BOT}
    sessions_raw = strict.get(row, "sessions", list, where)
    if not sessions_raw:
        raise where.error("sessions", "empty list")
    turns: list[Turn] = []
    sessions = []
    for index, raw in enumerate(sessions_raw):
        prefix = f"sessions[{index}]."
        session = strict.text(raw, "session", where, prefix)
        history = _history(strict.get(raw, "history", list, where, prefix), names, where, f"{prefix}history", session)
        memory = raw.get("memory") if isinstance(raw, dict) else None
        memory = strict.strings(memory, where, f"{prefix}memory") if memory is not None else None
        sessions.append({"session": session, "start": len(turns), "end": len(turns) + len(history), "memory": memory})
        turns.extend(history)
    strict.unique(((s["session"], where) for s in sessions), "sessions.session")
    responses = []
    for index, raw in enumerate(strict.get(row, "responses", list, where, optional=True, default=[])):
        prefix = f"responses[{index}]."
        session = strict.text(raw, "session", where, prefix)
        history = _history(strict.get(raw, "history", list, where, prefix), names, where, f"{prefix}history", session)
        responses.append({"session": session, "turns": history, "response": strict.text(raw, "response", where, prefix)})
    compressed = strict.get(row, "compressed_memory", str, where, optional=True, default=None)
    meta = {"format": "dialbench", "username": username, "botname": botname, "sessions": tuple(sessions),
            "compressed_memory": compressed.strip() if compressed else None, "responses": tuple(responses)}
    return Dialogue(id=episode, turns=tuple(turns), meta=meta, source=SourceRef(str(where.path), where.line))


def load_dialbench(path: Path) -> list[Dialogue]:
    """Return the episodes of a dialbench Dolphin JSON-lines file (episode ids must be unique)."""
    dialogues = [_episode(row, Where(path, line)) for line, row in iter_jsonl(path)]
    strict.unique(((d.id, Where(path, d.source.line)) for d in dialogues), "episode")  # type: ignore[union-attr]
    return dialogues


def _segments_from_text(value: str, where: Where) -> list[Turn]:
    text = value.replace("[BOS]", "<s>").replace("[EOS]", "</s>").rstrip()
    if text.endswith("[END]"):
        text = text[: -len("[END]")]
    text = text.replace("[END]", "")
    turns, pos = [], 0
    for match in SEGMENT.finditer(text):
        if text[pos:match.start()].strip():
            raise where.error("text", "text outside <s>[Human]/[AI]...</s> segments")
        turns.append(Turn(USER if match.group(1) == "Human" else BOT, match.group(2).strip(), name=match.group(1)))
        pos = match.end()
    if text[pos:].strip():
        raise where.error("text", "text outside <s>[Human]/[AI]...</s> segments (unterminated segment?)")
    return turns


def _segments_from_messages(value: list, where: Where) -> list[Turn]:
    turns = []
    for index, message in enumerate(value):
        prefix = f"messages[{index}]."
        role = strict.get(message, "role", str, where, prefix)
        if role not in ("user", "assistant", "ai", "bot"):
            raise where.error(f"{prefix}role", f"unknown speaker '{role}' (expected user or assistant)")
        strict.get(message, "lossmask", bool, where, prefix, optional=True)
        turns.append(Turn(USER if role == "user" else BOT, strict.get(message, "content", str, where, prefix).strip(),
                          name=role, meta={"lossmask": message.get("lossmask")}))
    return turns


def load_rows(path: Path, fmt: str) -> list[Dialogue]:
    """Return one dialogue per SFT or DPO row, its last turn being the target (AI) segment."""
    dialogues = []
    for index, (line, row) in enumerate(iter_jsonl(path)):
        where = Where(path, line)
        meta: dict[str, Any] = {"format": fmt}
        if fmt == "dpo":
            prompt = strict.text(row, "prompt", where)
            key = "chosen" if "chosen" in row else "ans"
            chosen = strict.text(row, key, where)
            meta["rejected"] = strict.text(row, "rejected", where)
            if "<s>" in prompt or "[BOS]" in prompt:  # drop the open "<s>[AI]\n" the wrapper ends with
                found = _segments_from_text(re.sub(r"(<s>|\[BOS\])\s*\[AI\]\s*$", "", prompt), where)
            else:
                found = [Turn(USER, prompt, name="Human")]
            turns = [t for t in found if t.text] + [Turn(BOT, chosen.replace("</s>", "").strip(), name="AI")]
            meta["rejected"] = meta["rejected"].replace("</s>", "").strip()
        elif isinstance(row, dict) and "messages" in row:
            turns = _segments_from_messages(strict.get(row, "messages", list, where), where)
        else:
            turns = _segments_from_text(strict.get(row, "text", str, where), where)
        if not turns:
            raise where.error("text" if fmt == "sft" else "prompt", "empty dialogue")
        if turns[-1].speaker != BOT or not any(t.speaker == USER for t in turns[:-1]):
            raise where.error("text" if fmt == "sft" else "prompt",
                              "expected [Human] segment(s) followed by a final [AI] target segment")
        if not turns[-1].text:
            raise where.error("target", "empty text")
        meta["kind"] = classify(turns[-1].text)
        dialogues.append(Dialogue(id=f"r{index}", turns=tuple(turns), meta=meta, source=SourceRef(str(path), line)))
    return dialogues


def load_episodes(path: Path) -> list[Dialogue]:
    """Return one dialogue per episode of the ``{episode: {session: {sub_history, ...}}}`` test JSON."""
    source, document = strict.load_json(path)
    strict.check_type(document, dict, Where(path, 1), "document")
    if not document:
        raise Where(path, 1).error("document", "no episodes")
    dialogues = []
    for episode, line in strict.top_level(source, document):
        where = Where(path, line)
        sessions_raw = strict.check_type(document[episode], dict, where, episode)
        if not sessions_raw:
            raise where.error(episode, "empty dialogue (no sessions)")
        turns: list[Turn] = []
        sessions = []
        username = botname = ""
        for session, raw in sessions_raw.items():
            prefix = f"{episode}.{session}."
            username = strict.text(raw, "username", where, prefix)
            botname = strict.text(raw, "botname", where, prefix)
            history = _history(strict.get(raw, "sub_history", list, where, prefix), {username: USER, botname: BOT},
                               where, f"{prefix}sub_history", session, lenient=True)
            sessions.append({"session": session, "start": len(turns), "end": len(turns) + len(history), "memory": None,
                             "raw": tuple(raw["sub_history"])})
            turns.extend(history)
        meta = {"format": "episodes", "username": username, "botname": botname, "sessions": tuple(sessions),
                "compressed_memory": None, "responses": ()}
        dialogues.append(Dialogue(id=episode, turns=tuple(turns), meta=meta, source=SourceRef(str(path), line)))
    return dialogues
