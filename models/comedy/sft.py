"""Stage 1, mixed-task SFT: rows of all three Dolphin tasks, COMEDY's label masking, its two quirks.

Masking (released ``_single_label_masking_phase1``, the default, since it is also what the paper
describes): find every bos; between consecutive bos positions b_i, b_{i+1} the span is masked when
i is even, i.e. every Human segment; the final segment (the last AI turn) is never masked.

Switches (recipe ``--set comedy.NAME=released``):
- ``pad_loss``: released rows are padded to ``max_seq_len`` with pad = eos and the padding is *kept*
  in the loss (the model learns to emit eos over the whole tail); intended: padding is label -100.
- ``schedule_length``: released scheduler length epochs x ceil(rows / world / grad_acc), which
  leaves out the per-device batch size and so stretches the cosine decay by that factor.
Rows longer than ``max_seq_len`` are dropped (released: a truncated row does not end in eos/pad)
and counted in the training metadata.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import BOT, Dialogue, Example
from models.comedy import prompts
from models.comedy.pipeline import history_text, utterances
from training.collate import IGNORE_INDEX

DOLPHIN_TASKS = ("dolphin_summarization", "dolphin_compression", "dolphin_response")

Segments = list[tuple[str, str]]
"""(role ``Human``/``AI``, text) in order; the last one is the AI target."""


def render(segments: Segments) -> str:
    """Return segments as COMEDY's training text: ``<s>[Role]\\ntext</s>`` joined with newlines."""
    return "\n".join(prompts.SEGMENT.format(role=role, text=text) for role, text in segments)


def example_segments(example: Example, language: str = "zh") -> Segments | None:
    """Return the (instruction, target) segments of a referenced task example, built with COMEDY's prompts."""
    if not example.references:
        return None
    user, bot = str(example.inputs.get("username", "")), str(example.inputs.get("botname", ""))
    target = example.references[0]
    if example.task == "dolphin_summarization":
        history = history_text(utterances(example.context, user, bot, language))
        return [("Human", prompts.instruction("summarize", language, history=history)), ("AI", f"【{target}】")]
    if example.task == "dolphin_compression":
        text = prompts.compress_instruction(user, bot, list(example.inputs["session_memories"]), language)
        return [("Human", text), ("AI", target)]
    history = history_text(utterances(example.context, user, bot, language))
    text = prompts.instruction("respond", language, compress_memory=str(example.inputs.get("compressed_memory", "")),
                               history=history, bot=bot)
    return [("Human", text), ("AI", target)]


def row_segments(dialogue: Dialogue) -> Segments:
    """Return an SFT-file row's own segments (all turns, Human and AI, as written)."""
    return [("AI" if turn.speaker == BOT else "Human", turn.text) for turn in dialogue.turns]


def collect(dialogues_by_task: Sequence[tuple[str, list[Dialogue]]]) -> tuple[list[Segments], dict[str, int]]:
    """Return the SFT rows of every file and counts per source.

    SFT-file rows train as written; dialbench episodes give the rows of *all three* tasks their
    references allow (one file with memories and compressions trains Tasks 1 and 2); DPO rows
    belong to stage 2 and episode test files have no targets, so both are counted and skipped.
    """
    from harness.plugins import TASKS

    rows: list[Segments] = []
    counts: dict[str, int] = {}
    seen: set[tuple[str, str, str]] = set()
    for _, dialogues in dialogues_by_task:
        plain = [d for d in dialogues if d.meta.get("format") not in ("sft", "dpo")]
        for dialogue in dialogues:
            fmt = dialogue.meta.get("format")
            if fmt == "sft":
                rows.append(row_segments(dialogue))
                counts["sft_rows"] = counts.get("sft_rows", 0) + 1
            elif fmt == "dpo":
                counts["skipped_dpo_rows"] = counts.get("skipped_dpo_rows", 0) + 1
        for name in DOLPHIN_TASKS:
            for example in TASKS.get(name)().build_examples(plain):
                key = (name, example.id, example.source.path if example.source else "")
                segments = example_segments(example)
                if segments is None or key in seen:
                    continue
                seen.add(key)
                rows.append(segments)
                counts[name] = counts.get(name, 0) + 1
    return rows, counts


def check_markers(tokenizer: Any) -> tuple[int, int]:
    """Return (bos, eos) ids after checking that ``<s>``/``</s>`` in text become exactly those tokens."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids = tokenizer("<s></s>", add_special_tokens=False)["input_ids"]
    if bos is None or eos is None or list(ids) != [bos, eos]:
        raise UserError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')}: '<s>'/'</s>' are not its bos/eos tokens; "
                        "COMEDY's format needs a LLaMA-style tokenizer")
    return int(bos), int(eos)


def released_labels(input_ids: Sequence[int], bos_id: int) -> list[int]:
    """Return labels with every even-numbered bos-to-bos span masked; the final segment stays trained."""
    labels = list(input_ids)
    starts = [i for i, token in enumerate(input_ids) if token == bos_id]
    for number, (start, end) in enumerate(zip(starts, starts[1:])):
        if number % 2 == 0:
            labels[start:end] = [IGNORE_INDEX] * (end - start)
    return labels


def encode(tokenizer: Any, segments: Segments, *, max_len: int, pad_loss: str, bos: int, eos: int) -> dict[str, list[int]] | None:
    """Return one row's features, or None when it is longer than ``max_len`` (dropped, as released)."""
    ids = list(tokenizer(render(segments), add_special_tokens=False)["input_ids"])
    if len(ids) > max_len:
        return None
    labels = released_labels(ids, bos)
    mask = [1] * len(ids)
    if pad_loss == "released":  # padded to max_seq_len with pad = eos, and the padding is trained
        fill = max_len - len(ids)
        ids, labels, mask = ids + [eos] * fill, labels + [eos] * fill, mask + [0] * fill
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def released_schedule_steps(rows: int, epochs: float, world_size: int, grad_accum: int) -> int:
    """Return the released scheduler length: epochs x ceil(rows / world / grad_acc) (no batch size)."""
    return int(math.ceil(epochs * math.ceil(rows / world_size / grad_accum)))


def released_schedule_trainer() -> type:
    """Return a Trainer whose LR schedule has the released (stretched) length."""
    from transformers import Trainer

    class ReleasedScheduleTrainer(Trainer):
        """Builds the scheduler for ``released_schedule_steps`` instead of the true step count."""

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            steps = released_schedule_steps(len(self.train_dataset), self.args.num_train_epochs,
                                            self.args.world_size, self.args.gradient_accumulation_steps)
            return super().create_scheduler(num_training_steps=steps, optimizer=optimizer)

    return ReleasedScheduleTrainer
