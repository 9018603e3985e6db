"""The ``gpt2_dialogue`` input format, shared by training and inference so the two never drift.

``<bos>`` + ``[<sp1>|<sp2>] + utterance`` per turn + ``<sp2>`` (+ target + eos when training);
token-type ids repeat each utterance's speaker token (``<bos>`` takes the first speaker's, the
response and eos take ``<sp2>``); the loss covers only the target and eos (systems.md §4.2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import BOT
from training.collate import IGNORE_INDEX, encode_segments

BOS, SP1, SP2 = "<bos>", "<sp1>", "<sp2>"
SILENCE = "__ SILENCE __"
"""PersonaChat's placeholder for a partner who did not speak; the paper drops it."""
MAX_TURNS = 5
"""Utterances per window, counting the response (paper default ``max_turns``)."""


def add_dialogue_tokens(tokenizer: Any) -> int:
    """Add ``<bos>``, ``<sp1>``, ``<sp2>`` (pad = eos, as the paper pads with eos); return how many were new."""
    added = tokenizer.add_special_tokens({"bos_token": BOS, "additional_special_tokens": [SP1, SP2]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return added


@dataclass(frozen=True)
class DialogueFormat:
    """Token ids of the format's special tokens, and the encoding of windows into model inputs."""

    bos: int
    eos: int
    sp1: int
    sp2: int

    @classmethod
    def of(cls, tokenizer: Any, where: str = "tokenizer") -> "DialogueFormat":
        """Return the format for ``tokenizer``; a tokenizer without the speaker tokens is a UserError."""
        ids = {}
        vocab = tokenizer.get_vocab()
        for name, token in (("bos", BOS), ("sp1", SP1), ("sp2", SP2), ("eos", tokenizer.eos_token)):
            value = tokenizer.convert_tokens_to_ids(token) if token else None
            if value is None or token not in vocab:  # (GPT-2's unk is its eos, so no unk-id test)
                raise UserError(f"{where}: token {token!r} missing; not a gpt2_dialogue checkpoint "
                                "(make one with `dialbench train gpt2_dialogue`)")
            ids[name] = int(value)
        return cls(**ids)

    def speaker(self, role: str) -> int:
        """Return the speaker token of a turn role: the bot is ``<sp2>``, everyone else ``<sp1>``."""
        return self.sp2 if role == BOT else self.sp1

    def encode(self, context: Sequence[tuple[int, Sequence[int]]], target: Sequence[int] | None = None,
               max_length: int | None = None) -> dict[str, list[int]] | None:
        """Return input_ids/token_type_ids/labels for ``context`` utterances (speaker, ids) + ``<sp2>``.

        With ``target`` the response and eos are appended and labelled; without it the result is a
        generation prompt (its labels are all -100 and it is returned anyway).
        """
        first = context[0][0] if context else self.sp2
        segments: list[tuple[list[int], bool]] = [([self.bos], False)]
        types: list[int] = [first]
        for speaker, ids in context:
            segments.append(([speaker, *ids], False))
            types.append(speaker)
        segments.append(([self.sp2], False))
        types.append(self.sp2)
        if target is None:
            ids = [token for segment, _ in segments for token in segment]
            type_ids = [t for (segment, _), t in zip(segments, types) for _ in segment]
            return {"input_ids": ids, "token_type_ids": type_ids, "labels": [IGNORE_INDEX] * len(ids)}
        segments.append(([*target, self.eos], True))
        types.append(self.sp2)
        return encode_segments(segments, max_length=max_length, token_types=types)


def window_length(utterances: Sequence[tuple[int, Sequence[int]]]) -> int:
    """Return the encoded length of a window whose last utterance is the target (bos + sp/utt + eos)."""
    return 2 + sum(1 + len(ids) for _, ids in utterances)


def training_windows(fmt: DialogueFormat, utterances: Sequence[tuple[int, Sequence[int]]],
                     max_turns: int = MAX_TURNS, max_len: int = 1024) -> list[dict[str, list[int]]]:
    """Return the paper's training examples of one dialogue (systems.md §4.2).

    Every ``<sp2>`` utterance h >= 1 is a target; its window starts at the earliest s in
    [max(0, h-max_turns+1), h-1] whose encoding fits ``max_len`` (so at least one context utterance);
    targets with no fitting window are skipped, as in the released code.
    """
    examples = []
    for h, (speaker, target) in enumerate(utterances):
        if speaker != fmt.sp2 or h == 0:
            continue
        for start in range(max(0, h - max_turns + 1), h):
            if window_length(utterances[start:h + 1]) <= max_len:
                examples.append(fmt.encode(utterances[start:h], target))
                break
    return [example for example in examples if example is not None]
