"""Open-domain dialogue readers for the GPT-2 multi-turn baseline (devjwsong, systems.md §4.1).

* ``dailydialog``: ``dialogues_text.txt`` style, one dialogue per line, utterances separated by
  ``__eou__``.
* ``empathetic``: EmpatheticDialogues CSV (``conv_id,utterance_idx,context,prompt,speaker_idx,
  utterance,...``; commas inside text are written ``_comma_``). Rows are grouped by ``conv_id``,
  consecutive rows of one speaker are merged and ``_comma_`` becomes ``,`` (as the baseline does).
* ``bst``: Blended Skill Talk JSON, a list of dialogues with ``previous_utterance`` (two seed
  utterances) and either ParlAI's ``dialog`` ``[[agent, text], ...]`` or the HF form's
  interleaved ``free_messages``/``guided_messages``.
* ``personachat``: ConvAI2/PersonaChat ParlAI text or JSON; personas are dropped and ``__SILENCE__``
  utterances removed, as the baseline does.

Every dialogue becomes a plain list of utterances; speakers are assigned by position (even index
``sp1``/user, odd ``sp2``/bot), which is how the baseline feeds them to GPT-2.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from harness.jsonio import read_text
from harness.records import BOT, USER, Dialogue, SourceRef, Turn
from tasks.formats import parlai, strict
from tasks.formats.strict import Where

ED_HEADER = ("conv_id", "utterance_idx", "context", "prompt", "speaker_idx", "utterance")
SILENCE = re.compile(r"^__\s*SILENCE\s*__$")


def detect(path: Path) -> str:
    """Return the format read from the content (the first line, or the first JSON character)."""
    text = read_text(path)
    first = next((line for line in text.split("\n") if line.strip()), "")
    if first.startswith("conv_id,"):
        return "empathetic"
    if first.lstrip().startswith("["):
        return "bst"
    if first.lstrip().startswith("{"):
        return "personachat"
    if re.match(r"^\d+ ", first) and "__eou__" not in first:
        return "personachat"
    return "dailydialog"


def _dialogue(index: int, utterances: Sequence[str], where: Where, meta: dict[str, Any] | None = None) -> Dialogue:
    """Return a dialogue whose speakers alternate sp1/sp2 by position."""
    turns = tuple(Turn(USER if i % 2 == 0 else BOT, u, name="sp1" if i % 2 == 0 else "sp2")
                  for i, u in enumerate(utterances))
    return Dialogue(id=f"d{index}", turns=turns, meta=meta or {}, source=SourceRef(str(where.path), where.line))


def load_dailydialog(path: Path) -> list[Dialogue]:
    """Return one dialogue per non-blank line of ``__eou__``-separated utterances."""
    dialogues = []
    for line_no, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        where = Where(path, line_no)
        if "__eou__" not in line:
            raise where.error("utterance", "no '__eou__' separator (expected DailyDialog text)")
        parts = [p.strip() for p in line.split("__eou__")]
        if parts and not parts[-1]:
            parts.pop()
        if not parts:
            raise where.error("dialogue", "empty dialogue")
        for number, part in enumerate(parts):
            if not part:
                raise where.error(f"utterance[{number}]", "empty text")
        dialogues.append(_dialogue(len(dialogues), parts, where))
    return dialogues


def load_empathetic(path: Path) -> list[Dialogue]:
    """Return EmpatheticDialogues conversations with same-speaker rows merged and ``_comma_`` restored."""
    lines = read_text(path).split("\n")
    header = tuple(f.strip() for f in lines[0].split(","))
    if header[: len(ED_HEADER)] != ED_HEADER:
        raise Where(path, 1).error("header", f"expected columns {','.join(ED_HEADER)}")
    groups: list[dict[str, Any]] = []
    finished: dict[str, int] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = Where(path, line_no)
        fields = line.rstrip("\r").split(",")
        if len(fields) < len(ED_HEADER):
            raise where.error("row", f"expected at least {len(ED_HEADER)} comma-separated fields, got {len(fields)}")
        conv_id, idx, speaker, text = fields[0], fields[1], fields[4], fields[5].replace("_comma_", ",").strip()
        if not idx.isdigit():
            raise where.error("utterance_idx", f"expected an integer, got '{idx}'")
        if not speaker.isdigit():
            raise where.error("speaker_idx", f"expected an integer, got '{speaker}'")
        if not text:
            raise where.error("utterance", "empty text")
        if not groups or groups[-1]["id"] != conv_id:
            if conv_id in finished:
                raise where.error("conv_id", f"duplicate id '{conv_id}' (its rows must be consecutive; first at line {finished[conv_id]})")
            finished[conv_id] = line_no
            groups.append({"id": conv_id, "line": line_no, "utterances": [], "speakers": [], "last": 0,
                           "context": fields[2]})
        group = groups[-1]
        if int(idx) <= group["last"]:
            raise where.error("utterance_idx", f"{idx} does not follow {group['last']}")
        group["last"] = int(idx)
        if group["speakers"] and group["speakers"][-1] == speaker:
            group["utterances"][-1] += " " + text
        else:
            group["speakers"].append(speaker)
            group["utterances"].append(text)
    if not groups:
        raise Where(path, 1).error("file", "no dialogues")
    return [_dialogue(i, g["utterances"], Where(path, g["line"]), {"conv_id": g["id"], "emotion": g["context"]})
            for i, g in enumerate(groups)]


def _bst_utterances(raw: Any, where: Where, prefix: str) -> list[str]:
    previous = strict.strings(strict.get(raw, "previous_utterance", list, where, prefix, optional=True, default=[]),
                              where, f"{prefix}previous_utterance", allow_empty=True)
    utterances = [u.strip() for u in previous]
    if isinstance(raw, dict) and "dialog" in raw:
        dialog = strict.get(raw, "dialog", list, where, prefix)
        last_agent = None
        for number, pair in enumerate(dialog):
            field = f"{prefix}dialog[{number}]"
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
                raise where.error(field, "expected [agent, text]")
            if pair[0] == last_agent:
                raise where.error(field, f"two consecutive turns of agent {pair[0]}; the example rule needs alternation")
            last_agent = pair[0]
            utterances.append(pair[1].strip())
    else:
        free = strict.strings(strict.get(raw, "free_messages", list, where, prefix), where, f"{prefix}free_messages")
        guided = strict.strings(strict.get(raw, "guided_messages", list, where, prefix), where,
                                f"{prefix}guided_messages", allow_empty=True)
        if len(guided) not in (len(free), len(free) - 1):
            raise where.error(f"{prefix}guided_messages", f"{len(guided)} guided messages for {len(free)} free messages")
        for number, message in enumerate(free):
            utterances.append(message.strip())
            if number < len(guided):
                utterances.append(guided[number].strip())
    return utterances


def load_bst(path: Path) -> list[Dialogue]:
    """Return Blended Skill Talk dialogues (seed utterances, then the conversation)."""
    source, document = strict.load_json(path)
    strict.check_type(document, list, Where(path, 1), "document")
    dialogues = []
    for index, line in strict.top_level(source, document):
        where = Where(path, line)
        utterances = _bst_utterances(document[index], where, f"[{index}].")
        if not utterances:
            raise where.error(f"[{index}].dialog", "empty dialogue")
        if any(not u for u in utterances):
            raise where.error(f"[{index}].dialog", "empty text")
        dialogues.append(_dialogue(index, utterances, where))
    if not dialogues:
        raise Where(path, 1).error("document", "no dialogues")
    return dialogues


def load_personachat(path: Path) -> list[Dialogue]:
    """Return PersonaChat dialogues as utterance lists (personas dropped, ``__SILENCE__`` removed)."""
    kind = parlai.detect(path)
    source = parlai.load_text(path) if kind == "parlai" else parlai.load_json(path, "valid")
    dialogues = []
    for dialogue in source:
        utterances = [t.text for t in dialogue.turns if not SILENCE.match(t.text)]
        where = Where(Path(dialogue.source.path), dialogue.source.line)  # type: ignore[union-attr]
        dialogues.append(_dialogue(len(dialogues), utterances, where))
    return dialogues


LOADERS = {"dailydialog": load_dailydialog, "empathetic": load_empathetic, "bst": load_bst,
           "personachat": load_personachat}
