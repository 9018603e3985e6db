"""The strategy model's prompt, training target and output parser (systems.md section 6.2).

Prompt (``create_prompts_4_LLaMA.py``): "1) Task definition and instruction", "2) Example and
Answers" (a worked example with a motivation), "3) Dialogue context to be inferred": numbered
``(n) Seeker: text`` / ``(n) Supporter: text [Strategy]`` lines of the turns before the target (the
target turn omitted), ending with ``\\nMotivation:\\n``. The target is the published motivation
sentence ("The motivation of the supporter in choosing the strategy [X] is to ..."); without a
motivations file it is the strategy sentence alone.

Parsers: ``intended`` reads only the generated continuation and maps the first bracketed name (or
else the first class name mentioned) onto the 8 classes; ``released`` reproduces
``infer_strategy.py``: the text searched is prompt + continuation (the HF pipeline echoes the
prompt), the first of the lowercased bracketed class names found in class order wins, default
Others, and the motivation is the last line. Since the prompt lists ``[Question]`` first, the
released parse answers Question for every example.
"""
from __future__ import annotations

import re
from typing import Sequence

from harness.records import BOT, Turn
from models.magic.strategies import MAGIC_ORDER
from tasks.formats.esconv import canonical_strategy

PARSERS = ("intended", "released")
TARGET_PREFIX = "The motivation of the supporter in choosing the strategy"

HEADER = (
    "1) Task definition and instruction\n"
    "You are an expert in emotional-support strategy inference. Given a conversation between a help-seeker "
    "and a supporter, predict the appropriate strategy for the supporter's next utterance, choosing from "
    + ", ".join(f"[{name}]" for name in MAGIC_ORDER)
    + ", and give the motivation for choosing it.\n"
    "2) Example and Answers\n"
    "(1) Seeker: I failed my exam and I feel like a complete failure.\n"
    "(2) Supporter: I am sorry to hear that. What happened? [Question]\n"
    "(3) Seeker: I studied for weeks but I still could not answer half of the questions.\n"
    "Motivation:\n"
    f"{TARGET_PREFIX} [Reflection of feelings] is to validate the seeker's feelings of disappointment "
    "so that they feel understood before looking for a way forward.\n"
    "3) Dialogue context to be inferred\n"
)


def clip_lines(context: Sequence[Turn], max_turns: int | None = None) -> list[str]:
    """Return the numbered dialogue lines; supporter turns carry their ``[Strategy]``."""
    turns = list(context)[-max_turns:] if max_turns else list(context)
    first = len(context) - len(turns) + 1
    lines = []
    for number, turn in enumerate(turns, start=first):
        if turn.speaker == BOT:
            lines.append(f"({number}) Supporter: {turn.text} [{turn.strategy or 'Others'}]")
        else:
            lines.append(f"({number}) Seeker: {turn.text}")
    return lines


def build_prompt(context: Sequence[Turn], max_turns: int | None = None) -> str:
    """Return MAGIC's strategy-inference prompt for the supporter turn after ``context``."""
    return HEADER + "\n".join(clip_lines(context, max_turns)) + "\nMotivation:\n"


def build_target(strategy: str, motivation: str | None = None) -> str:
    """Return the training target: the motivation when given, else the strategy sentence alone."""
    motivation = (motivation or "").strip()
    if motivation:
        return motivation
    return f"{TARGET_PREFIX} [{strategy}]."


def _first_bracketed(text: str) -> str | None:
    for match in re.finditer(r"\[([^\[\]]{2,60})\]", text):
        name = canonical_strategy(match.group(1), "multiesc")
        if name is not None:
            return name
    return None


def _first_mentioned(text: str) -> str | None:
    lowered = text.lower()
    found = [(lowered.find(name.lower()), -len(name), name) for name in MAGIC_ORDER if name.lower() in lowered]
    return min(found)[2] if found else None


def parse_strategy(continuation: str, prompt: str = "", parser: str = "intended") -> tuple[str, str]:
    """Return (strategy class, motivation text) from the strategy model's output (see module docstring)."""
    if parser == "released":
        text = prompt + continuation
        lowered = text.lower()
        label = next((name for name in MAGIC_ORDER if f"[{name.lower()}]" in lowered), "Others")
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return label, lines[-1].strip() if lines else ""
    label = _first_bracketed(continuation) or _first_mentioned(continuation) or "Others"
    motivation = continuation.strip().splitlines()[0].strip() if continuation.strip() else ""
    return label, motivation
