"""ConvAI2 / PersonaChat readers: ParlAI text files (every variant) and the JSON ``personality`` form.

ParlAI text (systems.md §2.1): every line starts with a turn number, and a dialogue starts at a
line numbered 1. Persona lines are ``N your persona: <sentence>`` (the bot's own persona, present in
``self``/``both`` variants) and ``N partner's persona: <sentence>`` (``other``/``both``); ``none``
files have neither. Dialogue lines are ``N <partner utterance>\\t<self response>``, optionally
followed by ``\\t<reward>\\t<cand1>|<cand2>|...`` in the files with candidates. ``original`` and
``revised`` only differ in the persona wording, so one reader handles all 16 variants.

JSON form (``personachat_self_original.json``): ``{split: [{"personality": [...], "utterances":
[{"history": [...], "candidates": [..., gold]}]}]}``; each utterance's history is the whole
conversation so far and the gold response is the last candidate.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.jsonio import read_text
from harness.records import BOT, USER, Dialogue, Persona, SourceRef, Turn
from tasks.formats import strict
from tasks.formats.strict import Where

LINE_RE = re.compile(r"^(\d+) (.*)$")
PERSONA_PREFIXES = (("your persona:", BOT), ("partner's persona:", USER))


def detect(path: Path) -> str:
    """Return ``personachat_json`` for a JSON document, ``parlai`` for numbered text lines."""
    head = read_text(path).lstrip()[:1]
    return "personachat_json" if head in "{[" else "parlai"


class _Builder:
    """Collects one ParlAI dialogue while its lines are read."""

    def __init__(self, where: Where, index: int) -> None:
        self.where = where
        self.index = index
        self.personas: dict[str, list[str]] = {BOT: [], USER: []}
        self.turns: list[Turn] = []
        self.last_number = 0

    def finish(self) -> Dialogue:
        if not self.turns:
            raise self.where.error("dialogue", "empty dialogue (persona lines but no utterances)")
        personas = tuple(Persona(owner, tuple(s)) for owner, s in self.personas.items() if s)
        return Dialogue(id=f"d{self.index}", turns=tuple(self.turns), personas=personas,
                        source=SourceRef(str(self.where.path), self.where.line))


def load_text(path: Path) -> list[Dialogue]:
    """Return the dialogues of a ParlAI ConvAI2 text file (any persona / candidates variant)."""
    path = Path(path)
    dialogues: list[Dialogue] = []
    current: _Builder | None = None
    for line_no, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = Where(path, line_no)
        match = LINE_RE.match(line)
        if not match:
            raise where.error("turn number", "line does not start with '<number> '")
        number, body = int(match.group(1)), match.group(2)
        if number == 1:
            if current is not None:
                dialogues.append(current.finish())
            current = _Builder(where, len(dialogues))
        elif current is None or number != current.last_number + 1:
            expected = 1 if current is None else current.last_number + 1
            raise where.error("turn number", f"expected {expected} (or 1 to start a dialogue), got {number}")
        current.last_number = number
        persona = next(((p, owner) for p, owner in PERSONA_PREFIXES if body.startswith(p)), None)
        if persona is not None:
            if current.turns:
                raise where.error("persona", "persona line after the dialogue has started")
            sentence = body[len(persona[0]):].strip()
            if not sentence:
                raise where.error("persona", "empty persona sentence")
            current.personas[persona[1]].append(sentence)
            continue
        parts = body.split("\t")
        if len(parts) < 2:
            raise where.error("utterance", "expected '<partner utterance><TAB><self response>'")
        partner, response = parts[0].strip(), parts[1].strip()
        if not partner or not response:
            raise where.error("utterance" if not partner else "response", "empty text")
        candidates = tuple(c for c in parts[3].split("|")) if len(parts) > 3 and parts[3] else ()
        if candidates and response not in candidates:
            raise where.error("candidates", "the gold response is not among the candidates")
        current.turns.append(Turn(USER, partner, name="partner", meta={"line": line_no}))
        current.turns.append(Turn(BOT, response, name="self", meta={"line": line_no, "candidates": candidates}))
    if current is not None:
        dialogues.append(current.finish())
    if not dialogues:
        raise Where(path, 1).error("file", "no dialogues")
    return dialogues


def _json_dialogue(raw: Any, where: Where, prefix: str, index: int) -> Dialogue:
    """Return one dialogue of the PersonaChat JSON form, checking that histories are cumulative."""
    personality = strict.strings(strict.get(raw, "personality", list, where, prefix), where,
                                 f"{prefix}personality", allow_empty=True)
    utterances = strict.get(raw, "utterances", list, where, prefix)
    if not utterances:
        raise where.error(f"{prefix}utterances", "empty dialogue")
    conversation: list[str] = []
    turns: list[Turn] = []
    for number, item in enumerate(utterances):
        field = f"{prefix}utterances[{number}]"
        history = strict.strings(strict.get(item, "history", list, where, f"{field}."), where, f"{field}.history")
        candidates = strict.strings(strict.get(item, "candidates", list, where, f"{field}."), where, f"{field}.candidates")
        if len(history) != len(conversation) + 1 or list(history[:-1]) != conversation:
            raise where.error(f"{field}.history", "history does not continue the previous utterance's history and gold response")
        turns.append(Turn(USER, history[-1].strip(), name="partner"))
        turns.append(Turn(BOT, candidates[-1].strip(), name="self", meta={"candidates": candidates}))
        conversation = list(history) + [candidates[-1]]
    personas = (Persona(BOT, personality),) if personality else ()
    return Dialogue(id=f"d{index}", turns=tuple(turns), personas=personas, source=SourceRef(str(where.path), where.line))


def load_json(path: Path, split: str = "valid") -> list[Dialogue]:
    """Return the dialogues of ``split`` from the PersonaChat JSON form (a bare list is one split)."""
    path = Path(path)
    source, document = strict.load_json(path)
    if isinstance(document, dict):
        if split not in document:
            raise Where(path, 1).error(split, f"missing split (the file has {', '.join(document) or 'none'})")
        line = dict(strict.top_level(source, document))[split]
        items, prefix = strict.check_type(document[split], list, Where(path, line), split), f"{split}"
    else:
        items, prefix, line = strict.check_type(document, list, Where(path, 1), "document"), "", 1
    if not items:
        raise Where(path, line).error(prefix or "document", "no dialogues")
    return [_json_dialogue(raw, Where(path, line), f"{prefix}[{i}].", i) for i, raw in enumerate(items)]
