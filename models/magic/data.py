"""MAGIC's training data: the esconv_strategy examples of the training split, and motivations aligned to them.

Examples follow MAGIC's rule (one per supporter turn after a seeker turn, with the memories of
earlier supporter turns) with contractions expanded as MAGIC's preprocessing does. Without a valid
file the first 80% of the dialogues (file order) train and the rest validate.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from harness.errors import DataError, UserError
from harness.records import Example
from training.recipe import TrainingData, split_head

TASK = "esconv_strategy"


def task(protocol: str = "default"):
    """Return the esconv_strategy task with MAGIC's preprocessing (contractions expanded)."""
    from tasks.esconv import ESConvStrategyTask

    return ESConvStrategyTask(protocol=protocol, expand_contractions=True)


def split_examples(data: TrainingData, train_fraction: float = 0.8) -> tuple[list[Example], list[Example]]:
    """Return (train, valid) examples: a given valid file, or the head split of the dialogues."""
    if TASK not in data.train:
        raise UserError(f"magic trains on --data {TASK}=PATH (MultiESC JSON lines)")
    builder = task()
    dialogues = builder.load(Path(data.train[TASK]))
    if TASK in data.valid:
        train_dialogues, valid_dialogues = dialogues, builder.load(Path(data.valid[TASK]))
    else:
        train_dialogues, valid_dialogues = split_head(dialogues, train_fraction)
    train = builder.build_examples(train_dialogues)
    valid = builder.build_examples(valid_dialogues) if valid_dialogues else []
    if not train:
        raise UserError(f"{data.train[TASK]}: no MAGIC training examples (no supporter turn after a seeker turn)")
    return train, valid


def load_motivations(path: str | Path | None, examples: Sequence[Example]) -> list[str] | None:
    """Return the motivations of ``path`` (a JSON list of strings, ``motivations_4_LLaMA.json``'s
    shape), one per training example; a length mismatch or a non-string entry is a DataError."""
    if path is None or str(path) == "":
        return None
    path = Path(str(path))
    if not path.is_file():
        raise UserError(f"{path}: motivations file not found (magic option motivations)")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise DataError(path, getattr(err, "lineno", None), "document", f"not valid JSON ({err})") from None
    if not isinstance(values, list):
        raise DataError(path, 1, "document", "expected a JSON list of motivation strings")
    if len(values) != len(examples):
        raise DataError(path, None, "document", f"holds {len(values)} motivations but the training split has "
                        f"{len(examples)} examples; the list must align with them one to one")
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise DataError(path, None, f"[{index}]", f"expected a string, got {type(value).__name__}")
    return list(values)


SAMPLINGS = ("spread", "balanced")


def balanced(labels: Sequence[str | None], limit: int | None) -> list[int]:
    """Return at most ``limit`` indices with the classes as equal as the data allows, in file order.

    Each class gives an even spread of its own examples; a class with fewer than its share gives
    all of them and the rest of the budget goes to the others (water-filling). Under a small budget
    an evenly spaced subsample keeps the split's skew (ESConv: a quarter Providing Suggestions, under
    a tenth Greeting) and a LoRA step count too small to learn the rare classes' cues.
    """
    if not limit or limit >= len(labels):
        return list(range(len(labels)))
    groups: dict[str | None, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    shares = {label: 0 for label in groups}
    left, open_classes = int(limit), sorted(groups, key=lambda k: (len(groups[k]), str(k)))
    while open_classes and left > 0:
        share = left // len(open_classes)
        if share == 0:  # fewer units than classes: one more to each of the largest classes
            for label in open_classes[::-1][:left]:
                shares[label] += 1
            break
        smallest = open_classes[0]
        room = len(groups[smallest]) - shares[smallest]
        if room <= share:
            shares[smallest] += room
            left -= room
            open_classes.pop(0)
            continue
        for label in open_classes:
            shares[label] += share
        left -= share * len(open_classes)
    return sorted(i for label, members in groups.items() for i in (spread(members, shares[label]) if shares[label] else []))


def spread(items: Sequence, limit: int | None) -> list:
    """Return at most ``limit`` items spaced evenly through ``items`` (deterministic subsample)."""
    if not limit or limit >= len(items):
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]
