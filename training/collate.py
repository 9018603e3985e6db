"""Label masking and padding: the two places where a wrong choice silently changes what is learned.

Every supervised recipe here describes a training sequence as segments flagged trainable or not
(prompt vs response, Human vs AI turn, context vs target utterance); ``encode_segments`` turns them
into ``input_ids`` and ``labels`` with -100 on every untrained position. Padding always gets label
-100 and attention 0, so no recipe can train on padding by accident (COMEDY's released code does;
that quirk is deliberately not reproduced).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

IGNORE_INDEX = -100
"""Label value that transformers' cross-entropy ignores."""

Segment = tuple[Sequence[int], bool]
"""Token ids and whether the loss covers them."""


def encode_segments(segments: Sequence[Segment], *, max_length: int | None = None,
                    token_types: Sequence[int | None] | None = None) -> dict[str, list[int]] | None:
    """Return ``input_ids``/``labels`` (and ``token_type_ids``) for segments, or None if nothing is trained.

    Over-long sequences lose tokens from the left, so the response at the end survives (the
    prompt's oldest part is the cheapest to drop). ``token_types`` gives one type id per segment.
    """
    input_ids: list[int] = []
    labels: list[int] = []
    types: list[int] = []
    for index, (ids, trained) in enumerate(segments):
        ids = list(ids)
        input_ids += ids
        labels += ids if trained else [IGNORE_INDEX] * len(ids)
        if token_types is not None:
            types += [int(token_types[index] or 0)] * len(ids)
    if max_length is not None and len(input_ids) > max_length:
        input_ids, labels, types = input_ids[-max_length:], labels[-max_length:], types[-max_length:]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    features = {"input_ids": input_ids, "labels": labels}
    if token_types is not None:
        features["token_type_ids"] = types
    return features


def encode_pair(tokenizer: Any, source: str, target: str, *, max_source: int = 512,
                max_target: int = 128) -> dict[str, list[int]]:
    """Return encoder-decoder features: the source as ``input_ids``, the target (+eos) as ``labels``.

    The model builds its decoder input by shifting the labels right, so only the target is scored.
    Tokenizers that add no eos themselves (the tiny presets' BPE) get one appended, so the model
    learns to stop.
    """
    eos = tokenizer.eos_token_id
    source_ids = tokenizer(source, truncation=True, max_length=max_source)["input_ids"]
    target_ids = tokenizer(text_target=target, truncation=True, max_length=max_target)["input_ids"]
    if eos is not None and (not target_ids or target_ids[-1] != eos):
        target_ids = target_ids[: max_target - 1] + [eos]
    return {"input_ids": source_ids, "labels": target_ids}


@dataclass
class PaddingCollator:
    """Pad each feature of a batch to its own longest length, on the right.

    ``labels`` pad with -100 and ``attention_mask`` (derived from ``input_ids`` when absent) with 0;
    other features (``input_ids``, ``token_type_ids``) pad with ``pad_id``. Right padding keeps the
    default position ids correct for causal LMs during training.
    """

    pad_id: int
    pad_values: Mapping[str, int] = field(default_factory=dict)

    def __call__(self, batch: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, Any]:
        import torch

        rows = [dict(row) for row in batch]
        for row in rows:
            row.setdefault("attention_mask", [1] * len(row["input_ids"]))
        out: dict[str, Any] = {}
        for key in rows[0]:
            pad = self.pad_values.get(key, IGNORE_INDEX if key == "labels" else 0 if key == "attention_mask" else self.pad_id)
            width = max(len(row[key]) for row in rows)
            out[key] = torch.tensor([list(row[key]) + [pad] * (width - len(row[key])) for row in rows], dtype=torch.long)
        return out


def count_target_tokens(features: Sequence[Mapping[str, Sequence[int]]]) -> int:
    """Return how many tokens carry a loss (used to refuse data with no targets and for throughput)."""
    return sum(sum(1 for label in row["labels"] if label != IGNORE_INDEX) for row in features)
