"""ESConv readers: MultiESC's JSON-lines split files and the original ``ESConv.json``; strategy sets.

Formats (systems.md §5.1, issue 4):

* ``multiesc``: ``train/valid/test.txt``, one dialogue per line with ``emotion_type``,
  ``problem_type``, ``situation``, ``init_intensity``, ``final_intensity`` and ``dialog``; system
  turns ``{text, speaker: "sys", strategy, all_strategy}``, user turns ``{text, speaker: "usr",
  vad, cause, feedback}``. Text is pre-tokenised ("I ' m").
* ``esconv_json``: the original release, a JSON list of dialogues with ``experience_type``,
  ``emotion_type``, ``problem_type``, ``situation`` and ``dialog`` of ``{speaker: seeker|supporter,
  annotation: {strategy?, feedback?}, content}``. Supporters often send several messages in a row;
  like MultiESC's preprocessing they are merged into one turn (``merge_consecutive``), keeping the
  first message's strategy as ``strategy`` and all of them in ``meta["all_strategy"]`` (this is
  what MultiESC's merged turns carry: ``strategy == all_strategy[0]`` for 251 of the 260 merged
  turns of valid.txt).

Strategy sets: ``multiesc`` (8 classes; suggestions and information merged, greeting separate,
MultiESC ``new_strategy.json``) and ``original`` (ESConv's 8: separate "Providing Suggestions" and
"Information", no greeting). Labels are matched case-insensitively, with or without brackets.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.jsonio import iter_jsonl, read_text
from harness.records import BOT, USER, Dialogue, SourceRef, Turn
from tasks.formats import strict
from tasks.formats.strict import Where

MULTIESC_STRATEGIES = (
    "Question", "Greeting", "Restatement or Paraphrasing", "Reflection of feelings", "Self-disclosure",
    "Affirmation and Reassurance", "Providing Suggestions or Information", "Others",
)
ORIGINAL_STRATEGIES = (
    "Question", "Restatement or Paraphrasing", "Reflection of feelings", "Self-disclosure",
    "Affirmation and Reassurance", "Providing Suggestions", "Information", "Others",
)
STRATEGY_SETS = {"multiesc": MULTIESC_STRATEGIES, "original": ORIGINAL_STRATEGIES}
MERGED = "Providing Suggestions or Information"

SPEAKERS = {"multiesc": {"usr": USER, "sys": BOT}, "esconv_json": {"seeker": USER, "supporter": BOT}}


def canonical_strategy(label: str, strategy_set: str) -> str | None:
    """Return ``label`` as spelled in ``strategy_set`` (case/bracket-insensitive), or None if unknown.

    Original-set labels map onto the MultiESC set by merging suggestions and information; the
    reverse has no defined mapping (a merged label cannot be split), so it is unknown.
    """
    key = label.strip().strip("[]@").strip().lower()
    for name in STRATEGY_SETS[strategy_set]:
        if name.lower() == key:
            return name
    if strategy_set == "multiesc" and key in ("providing suggestions", "information"):
        return MERGED
    return None


def detect(path: Path) -> str:
    """Return ``esconv_json`` for a JSON list, ``multiesc`` for JSON lines."""
    head = read_text(path).lstrip()[:1]
    return "esconv_json" if head == "[" else "multiesc"


def _turn(raw: Any, fmt: str, where: Where, prefix: str, strategy_set: str) -> Turn:
    """Return one checked turn of either format."""
    text_key = "text" if fmt == "multiesc" else "content"
    speaker = strict.get(raw, "speaker", str, where, prefix)
    role = SPEAKERS[fmt].get(speaker)
    if role is None:
        raise where.error(f"{prefix}speaker", f"unknown speaker '{speaker}' (expected {' or '.join(SPEAKERS[fmt])})")
    text = strict.text(raw, text_key, where, prefix)
    if fmt == "multiesc":
        raw_strategy = strict.get(raw, "strategy", str, where, prefix) if role == BOT else None
        meta = {k: raw[k] for k in ("all_strategy", "vad", "cause", "feedback") if k in raw}
    else:
        annotation = strict.get(raw, "annotation", dict, where, prefix, optional=True, default={})
        raw_strategy = strict.get(annotation, "strategy", str, where, f"{prefix}annotation.") if role == BOT else None
        meta = {k: annotation[k] for k in annotation if k != "strategy"}
    strategy = None
    if raw_strategy is not None:
        strategy = canonical_strategy(raw_strategy, strategy_set)
        if strategy is None:
            valid = "; ".join(STRATEGY_SETS[strategy_set])
            hint = " (a merged label needs strategy_set=multiesc)" if raw_strategy.strip("[]") == MERGED else ""
            raise where.error(f"{prefix}strategy", f"unknown strategy '{raw_strategy}'{hint}; valid: {valid}")
    return Turn(speaker=role, text=text, name=speaker, strategy=strategy, meta=meta)


def _merge(turns: list[Turn]) -> list[Turn]:
    """Return ``turns`` with consecutive messages of one speaker joined (MultiESC preprocessing)."""
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1].speaker == turn.speaker:
            prev = merged[-1]
            strategies = list(prev.meta.get("all_strategy", [prev.strategy] if prev.strategy else []))
            if turn.strategy:
                strategies.append(turn.strategy)
            merged[-1] = Turn(prev.speaker, f"{prev.text} {turn.text}", prev.name, prev.strategy or turn.strategy,
                              meta={**prev.meta, "all_strategy": strategies})
        else:
            merged.append(turn)
    return merged


def _dialogue(raw: Any, fmt: str, where: Where, index: int, strategy_set: str, merge: bool,
              source: str = "", start_line: int | None = None) -> Dialogue:
    """Return one checked dialogue; ``where`` points at its line (JSONL) or first line (JSON)."""
    strict.check_type(raw, dict, where, "dialogue")
    situation = strict.text(raw, "situation", where)
    meta = {"situation": situation}
    for key in ("emotion_type", "problem_type"):
        meta[key] = strict.text(raw, key, where)
    for key in ("experience_type", "init_intensity", "final_intensity", "seeker_question1", "survey_score"):
        if key in raw:
            meta[key] = raw[key]
    dialog = strict.get(raw, "dialog", list, where)
    if not dialog:
        raise where.error("dialog", "empty dialogue")
    turns = []
    cursor = start_line
    for number, item in enumerate(dialog):
        at = where
        content = item.get("content") if isinstance(item, dict) else None
        if source and cursor is not None and isinstance(content, str):  # locate the turn in a JSON document
            cursor = strict.find_line(source, cursor, json.dumps(content, ensure_ascii=False)[:40])
            at = where.at(cursor)
        turns.append(_turn(item, fmt, at, f"dialog[{number}].", strategy_set))
    if merge:
        turns = _merge(turns)
    return Dialogue(id=f"d{index}", turns=tuple(turns), meta=meta, source=SourceRef(str(where.path), where.line))


def load(path: Path, fmt: str, strategy_set: str = "multiesc", merge_consecutive: bool = True) -> list[Dialogue]:
    """Return the dialogues of an ESConv file in ``fmt`` (``multiesc`` or ``esconv_json``)."""
    path = Path(path)
    dialogues = []
    if fmt == "multiesc":
        for index, (line, raw) in enumerate(iter_jsonl(path)):
            dialogues.append(_dialogue(raw, fmt, Where(path, line), index, strategy_set, merge=False))
        return dialogues
    source, document = strict.load_json(path)
    strict.check_type(document, list, Where(path, 1), "document")
    for index, line in strict.top_level(source, document):
        dialogues.append(_dialogue(document[index], fmt, Where(path, line), index, strategy_set,
                                   merge=merge_consecutive, source=source, start_line=line))
    if not dialogues:
        raise strict.Where(path, 1).error("document", "no dialogues")
    return dialogues


def check_alternation(dialogue: Dialogue) -> None:
    """Raise a DataError at the first pair of consecutive turns by the same speaker.

    MAGIC's example rule takes a response at every system turn after a user turn and assumes the
    speakers alternate (its parity logic breaks otherwise), so a non-alternating dialogue is refused
    rather than silently giving different examples.
    """
    for index in range(1, len(dialogue.turns)):
        if dialogue.turns[index].speaker == dialogue.turns[index - 1].speaker:
            where = Where(Path(dialogue.source.path), dialogue.source.line) if dialogue.source else Where(Path("?"))
            raise where.error(f"dialog[{index}].speaker",
                              f"two consecutive '{dialogue.turns[index].name}' turns; the example rule needs alternating speakers")


# MAGIC expands contractions in MultiESC's pre-tokenised text ("I ' m" -> "I am"). Our own list of
# the common English contractions, written with the spaced apostrophe that MultiESC text uses.
_CONTRACTIONS = {
    "i ' m": "i am", "i ' ve": "i have", "i ' ll": "i will", "i ' d": "i would",
    "you ' re": "you are", "you ' ve": "you have", "you ' ll": "you will", "you ' d": "you would",
    "we ' re": "we are", "we ' ve": "we have", "we ' ll": "we will", "they ' re": "they are",
    "they ' ve": "they have", "they ' ll": "they will", "he ' s": "he is", "she ' s": "she is",
    "it ' s": "it is", "that ' s": "that is", "there ' s": "there is", "what ' s": "what is",
    "let ' s": "let us", "don ' t": "do not", "doesn ' t": "does not", "didn ' t": "did not",
    "can ' t": "can not", "couldn ' t": "could not", "won ' t": "will not", "wouldn ' t": "would not",
    "shouldn ' t": "should not", "isn ' t": "is not", "aren ' t": "are not", "wasn ' t": "was not",
    "weren ' t": "were not", "haven ' t": "have not", "hasn ' t": "has not", "hadn ' t": "had not",
    "ain ' t": "is not",
}
_CONTRACTION_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(_CONTRACTIONS, key=len, reverse=True)) + r")\b",
                             re.IGNORECASE)


def expand_contractions(text: str) -> str:
    """Return ``text`` with spaced contractions expanded, keeping a leading capital letter."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        expansion = _CONTRACTIONS[found.lower()]
        return expansion[0].upper() + expansion[1:] if found[0].isupper() else expansion

    return _CONTRACTION_RE.sub(replace, text)
