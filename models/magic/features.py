"""Examples -> response-model features, and the collator that de-duplicates the batch's memories.

The source is MAGIC's context string (situation, then every earlier turn, joined by ``</s>``),
framed by ``<s>``/``</s>``; the target is ``<s> response </s>`` (the decoder input drops ``</s>``,
the labels drop ``<s>``). ``truncation`` chooses which end of an over-long context is cut:
``left`` (default: the oldest tokens go, the latest turns stay) or ``right`` (released: the
tokenizer's right truncation drops the most recent turns).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from harness.errors import UserError
from harness.records import Example
from models.magic.bank import deduplicate_memories
from models.magic.strategies import strategy_id

TRUNCATIONS = ("left", "right")
NO_MOTIVATION = "No motivation provided"
"""What the released code encodes when an example has no motivation."""


@dataclass(frozen=True)
class FeatureSpec:
    """How examples become token ids (recorded in the checkpoint's magic.json)."""

    max_source: int = 512
    max_target: int = 64
    memory_length: int = 64
    max_motivation: int = 64
    truncation: str = "left"
    motivation: str = "unused"

    def __post_init__(self) -> None:
        if self.truncation not in TRUNCATIONS:
            raise UserError(f"magic: truncation '{self.truncation}' is not one of {', '.join(TRUNCATIONS)}")


class Featurizer:
    """Token ids of MAGIC's inputs for one tokenizer (bos/eos framing done here, tokenizer-independent)."""

    def __init__(self, tokenizer: Any, spec: FeatureSpec) -> None:
        self.tokenizer = tokenizer
        self.spec = spec
        self.bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        self.eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
        if self.bos is None or self.eos is None:
            raise UserError("magic: the tokenizer needs bos (<s>) and eos (</s>) tokens")

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def framed(self, text: str, limit: int) -> list[int]:
        """Return ``<s> text </s>`` cut to ``limit`` tokens at the right (the released rule for
        responses, memories and motivations)."""
        return [self.bos] + self._ids(text)[: max(limit - 2, 0)] + [self.eos]

    def source(self, example: Example) -> list[int]:
        """Return the context ids, truncated per ``spec.truncation``."""
        parts = [str(example.inputs.get("situation", ""))] + [turn.text for turn in example.context]
        body: list[int] = []
        for index, part in enumerate(parts):
            if index:
                body.append(self.eos)
            body += self._ids(part)
        room = self.spec.max_source - 2
        body = body[-room:] if self.spec.truncation == "left" else body[:room]
        return [self.bos] + body + [self.eos]

    def target(self, text: str) -> list[int]:
        """Return the labels: response ids then ``</s>`` (the decoder input is shifted from them)."""
        return self._ids(text)[: self.spec.max_target - 1] + [self.eos]

    def memories(self, example: Example) -> list[tuple[tuple[int, ...], int]]:
        """Return (framed response ids, strategy id) for each earlier supporter turn of ``example``."""
        texts = list(example.inputs.get("response_memory", ()))
        strategies = list(example.inputs.get("strategy_memory", ()))
        return [(tuple(self.framed(text, self.spec.memory_length)), strategy_id(label, f"example {example.id} strategy_memory"))
                for text, label in zip(texts, strategies)]

    def row(self, example: Example, strategy: str | None, motivation: str | None = None,
            with_target: bool = True) -> dict[str, Any]:
        """Return one feature row; ``strategy`` None means no memory (``strategy=none``)."""
        row: dict[str, Any] = {
            "input_ids": self.source(example),
            "strategy_ids": -1 if strategy is None else strategy_id(strategy, f"example {example.id} strategy"),
        }
        if with_target:
            if not example.references:
                raise UserError(f"example {example.id}: no reference response to train on")
            row["labels"] = self.target(example.references[0])
            row["memory"] = self.memories(example)
        if self.spec.motivation == "encoded":
            row["motivation_ids"] = self.framed(motivation or NO_MOTIVATION, self.spec.max_motivation)
        return row


@dataclass
class MagicCollator:
    """Pad a batch; flatten its de-duplicated response memories into ``memory_ids`` [N, memory_length]."""

    pad_id: int
    memory_length: int = 64

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        def padded(key: str, value: int) -> torch.Tensor:
            width = max(len(row[key]) for row in batch)
            return torch.tensor([list(row[key]) + [value] * (width - len(row[key])) for row in batch], dtype=torch.long)

        def mask(key: str) -> torch.Tensor:
            width = max(len(row[key]) for row in batch)
            return torch.tensor([[1] * len(row[key]) + [0] * (width - len(row[key])) for row in batch], dtype=torch.long)

        out: dict[str, Any] = {"input_ids": padded("input_ids", self.pad_id), "attention_mask": mask("input_ids")}
        out["strategy_ids"] = torch.tensor([int(row["strategy_ids"]) for row in batch], dtype=torch.long)
        if "labels" in batch[0]:
            out["labels"] = padded("labels", -100)
        if "motivation_ids" in batch[0]:
            out["motivation_ids"] = padded("motivation_ids", self.pad_id)
            out["motivation_mask"] = mask("motivation_ids")
        if "memory" in batch[0]:
            memories = [[(tuple(ids), int(s)) for ids, s in row["memory"]] for row in batch]
            flat = [item for index in deduplicate_memories(memories) for item in memories[index]]
            ids = [list(item[0])[: self.memory_length] for item in flat]
            out["memory_ids"] = torch.tensor([row + [self.pad_id] * (self.memory_length - len(row)) for row in ids],
                                             dtype=torch.long).reshape(len(ids), self.memory_length)
            out["memory_mask"] = torch.tensor([[1] * len(row) + [0] * (self.memory_length - len(row)) for row in ids],
                                              dtype=torch.long).reshape(len(ids), self.memory_length)
            out["memory_strategy"] = torch.tensor([item[1] for item in flat], dtype=torch.long)
        return out
