"""SPT's published input template (systems.md section 2.2), shared by training and inference so they never drift.

``{bos}given persona: {persona sentences joined by ' '}; context: {Q:/R:-prefixed context joined by ' '} R:``
then `` {target}{eos}`` when training. The prompt and the target are tokenised separately
(``add_special_tokens=False``) and concatenated, so the training prompt tokens are exactly the
inference prompt tokens; over-long inputs lose tokens from the left, keeping the target.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from harness.records import BOT, Example
from training.collate import IGNORE_INDEX


def persona_text(example: Example) -> str:
    """Return the bot's persona sentences joined by spaces (SPT reads only 'your persona')."""
    return " ".join(s for p in example.personas if p.owner == BOT for s in p.sentences)


def context_text(example: Example, max_context_turns: int = -1) -> str:
    """Return the context with ``Q: ``/``R: `` prefixes by position (even Q, odd R), joined by spaces.

    ``max_context_turns`` k > 0 keeps the last 2k-1 utterances (SPT's ``max_context_turns``).
    """
    turns = [turn.text for turn in example.context]
    prefixed = [("Q: " if index % 2 == 0 else "R: ") + text for index, text in enumerate(turns)]
    if max_context_turns > 0:
        prefixed = prefixed[-(2 * max_context_turns - 1):]
    return " ".join(prefixed)


def prompt_text(example: Example, max_context_turns: int = -1) -> str:
    """Return the inference prompt text (no bos): ``given persona: ...; context: ... R:``."""
    return f"given persona: {persona_text(example)}; context: {context_text(example, max_context_turns)} R:"


@dataclass(frozen=True)
class SPTFormat:
    """Token-level encoding of the template for one tokenizer."""

    tokenizer: Any
    max_length: int = 512
    max_context_turns: int = -1
    drop_eos_when_pad: bool = False
    """The released Llama quirk: pad = eos and ignore_index = pad, so the final eos carries no loss."""

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)

    @property
    def eos_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    def _bos(self) -> list[int]:
        bos = self.tokenizer.bos_token_id
        return [int(bos)] if bos is not None else []

    def prompt_ids(self, example: Example) -> list[int]:
        """Return the inference prompt ids (bos + template up to ``R:``), left-truncated to max_length."""
        ids = self._bos() + self.tokenizer.encode(prompt_text(example, self.max_context_turns), add_special_tokens=False)
        return ids[-self.max_length:]

    def training_row(self, example: Example) -> dict[str, Any] | None:
        """Return input_ids/labels (loss on `` target`` + eos only) and selector_ids, or None without a target."""
        reference = example.references[0].strip() if example.references else ""
        if not reference:
            return None
        prompt = self._bos() + self.tokenizer.encode(prompt_text(example, self.max_context_turns), add_special_tokens=False)
        target = self.tokenizer.encode(" " + reference, add_special_tokens=False) + [self.eos_id]
        target = target[: self.max_length - 1]
        labels_target = list(target)
        if self.drop_eos_when_pad and self.pad_id == self.eos_id:
            labels_target[-1] = IGNORE_INDEX
        keep = self.max_length - len(target)
        prompt = prompt[-keep:] if keep > 0 else []
        if all(label == IGNORE_INDEX for label in labels_target):
            return None
        return {
            "input_ids": prompt + target,
            "labels": [IGNORE_INDEX] * len(prompt) + labels_target,
            "selector_ids": prompt,
            "persona": persona_text(example),
            "context": context_text(example, self.max_context_turns),
        }

    def rows(self, examples: Sequence[Example]) -> list[dict[str, Any]]:
        """Return the training rows of ``examples`` (examples without a target are skipped)."""
        return [row for row in (self.training_row(example) for example in examples) if row is not None]
