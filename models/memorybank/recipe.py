"""Training recipe of ``silicon_friend``: SiliconFriend's LoRA on psychological dialogues (systems.md 3.2).

The 38K Chinese psychological dialogues were never released; the stand-in is the supporter turns of
``esconv_strategy`` (emotional-support dialogues): one pair per supporter turn, ``input`` = the
seeker's words since the supporter last spoke, ``output`` = the supporter's reply. Each pair is
formatted with the BELLE template ``{bos}Human: {input}\\nAssistant: {output}{eos}`` and the prompt
masked (loss on output + eos). The ChatGLM collator quirk is a preset switch (``labels=released``,
presets ``*_released_labels``): labels become ``[-100] * (len - 1) + [last id]``, which supervises only
the final token. The first 90% of dialogues train, the rest validate (BELLE: min(1000, 10%)).

Presets: ``tiny`` (embedded SmolLM2-135M + LoRA r=8 on q/k/v/o, minutes on 2 cores), ``paper``
(BELLE-7B: r=8, alpha 16, dropout 0.05, q/k/v/gate/up/down, lr 2e-5, 3 epochs, micro-batch 1 x 16,
cutoff 1024, warmup 10) and ``paper_chatglm`` (ChatGLM-6B: r=8, alpha 32, dropout 0.1,
query_key_value, lr 1e-4, 4 epochs, batch 6 x 8; needs ``--base`` to a local copy and remote code).
The trained adapter directory evaluates as ``--model DIR`` or ``--model BASE+adapter=DIR``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import BOT, USER, Dialogue
from training.adapters import AdapterSpec, apply_adapter
from training.collate import IGNORE_INDEX, PaddingCollator, count_target_tokens, encode_segments
from training.config import Preset, TrainConfig
from training.recipe import Recipe, TrainingData, TrainingJob, load_dialogues, split_head

TINY_BASE = "embedded:smollm2-135m-instruct"
BELLE_TARGETS = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj")


def _preset(name: str, description: str, train: TrainConfig, model: dict, labels: str, max_len: int) -> Preset:
    return Preset(name=name, description=description, train=train, model=model,
                  data={"labels": labels, "max_len": max_len, "train_fraction": 0.9, "max_pairs": model.pop("max_pairs", None)})


def _presets() -> dict[str, Preset]:
    tiny_train = TrainConfig(learning_rate=2e-4, epochs=1, batch_size=8, schedule="linear", warmup=0.05,
                             logging_steps=10, cpu_threads=2, bf16=False, train_sampling="group_by_length")
    tiny_model = {"base": TINY_BASE, "r": 8, "alpha": 16, "dropout": 0.05, "targets": ("q_proj", "k_proj", "v_proj", "o_proj"),
                  "max_pairs": 400}
    belle = TrainConfig(learning_rate=2e-5, epochs=3, batch_size=1, grad_accum=16, warmup=10, logging_steps=10)
    belle_model = {"base": "BelleGroup/BELLE-LLaMA-7B-2M", "r": 8, "alpha": 16, "dropout": 0.05, "targets": BELLE_TARGETS}
    chatglm = TrainConfig(learning_rate=1e-4, epochs=4, batch_size=6, grad_accum=8, logging_steps=10)
    chatglm_model = {"base": "THUDM/chatglm-6b", "r": 8, "alpha": 32, "dropout": 0.1, "targets": ("query_key_value",)}
    presets = {}
    for labels in ("intended", "released"):
        suffix = "" if labels == "intended" else "_released_labels"
        presets["tiny" + suffix] = _preset("tiny" + suffix, f"SmolLM2-135M + LoRA r=8, 400 ESConv pairs, 1 epoch; labels={labels}",
                                           tiny_train, dict(tiny_model), labels, 384)
        presets["paper" + suffix] = _preset("paper" + suffix, f"BELLE-7B LoRA as released (train/BELLE); labels={labels}",
                                            belle, dict(belle_model), labels, 1024)
        presets["paper_chatglm" + suffix] = _preset("paper_chatglm" + suffix,
                                                    f"ChatGLM-6B LoRA as released (train/ChatGLM); labels={labels}",
                                                    chatglm, dict(chatglm_model), labels, 1280)
    return presets


PRESETS = _presets()


def pairs(dialogues: Sequence[Dialogue]) -> list[tuple[str, str]]:
    """Return ``(input, output)``: the seeker's words since the last supporter turn, then the reply."""
    out = []
    for dialogue in dialogues:
        pending: list[str] = []
        for turn in dialogue.turns:
            if turn.speaker == USER:
                pending.append(turn.text.strip())
            elif turn.speaker == BOT and pending and turn.text.strip():
                out.append((" ".join(pending), turn.text.strip()))
                pending = []
    return out


def belle_features(tokenizer: Any, source: str, target: str, max_len: int, labels: str) -> dict[str, list[int]] | None:
    """Return BELLE-template features; ``labels=released`` keeps only the last label (ChatGLM collator)."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt = bos + tokenizer.encode(f"Human: {source}\nAssistant: ", add_special_tokens=False)
    answer = tokenizer.encode(target, add_special_tokens=False) + [tokenizer.eos_token_id]
    features = encode_segments([(prompt, False), (answer, True)], max_length=max_len)
    if features is not None and labels == "released":
        features["labels"] = [IGNORE_INDEX] * (len(features["input_ids"]) - 1) + [features["input_ids"][-1]]
    return features


class SiliconFriendRecipe(Recipe):
    """LoRA SFT of a causal LM on (input, output) pairs in the BELLE template."""

    system = "silicon_friend"
    tasks = ("esconv_strategy",)
    presets = PRESETS

    def build(self, preset: Preset, data: TrainingData, *, seed: int, tokenizer_dir: Path | None = None,
              base: str | None = None) -> TrainingJob:
        """Return the job: base + LoRA, BELLE-formatted pairs, right-padding collator."""
        from harness.checkpoints.loader import load_model

        base = base or str(preset.model["base"])
        loaded = load_model(base, dtype="float32", device="cpu")
        model, tokenizer = loaded.model, loaded.tokenizer
        if tokenizer.eos_token_id is None:
            raise UserError(f"{base}: tokenizer has no eos token (the BELLE template ends every answer with one)")
        spec = AdapterSpec(r=int(preset.model["r"]), alpha=int(preset.model["alpha"]), dropout=float(preset.model["dropout"]),
                           target_modules=tuple(preset.model["targets"]))
        model = apply_adapter(model, spec)
        train_pairs, valid_pairs = [], []
        fraction = float(preset.data.get("train_fraction", 0.9))
        for task, path in data.train.items():
            dialogues = load_dialogues(task, path)
            if task in data.valid:
                train_pairs += pairs(dialogues)
                valid_pairs += pairs(load_dialogues(task, data.valid[task]))
            else:
                head, rest = split_head(dialogues, fraction)
                train_pairs += pairs(head)
                valid_pairs += pairs(rest)[:1000]
        limit = preset.data.get("max_pairs")
        if limit:
            train_pairs, valid_pairs = train_pairs[: int(limit)], valid_pairs[: max(1, int(limit) // 10)]
        labels, max_len = str(preset.data.get("labels", "intended")), int(preset.data.get("max_len", 1024))
        train_rows = [f for s, t in train_pairs if (f := belle_features(tokenizer, s, t, max_len, labels))]
        valid_rows = [f for s, t in valid_pairs if (f := belle_features(tokenizer, s, t, max_len, labels))]
        if not train_rows:
            raise UserError(f"{', '.join(map(str, data.train.values()))}: no supporter replies to train silicon_friend on")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return TrainingJob(model=model, tokenizer=tokenizer, train_dataset=train_rows, eval_dataset=valid_rows or None,
                           config=preset.train, collator=PaddingCollator(pad_id=pad),
                           meta={"base": base, "labels": labels, "train_pairs": len(train_rows), "valid_pairs": len(valid_rows),
                                 "train_target_tokens": count_target_tokens(train_rows), "lora": vars(spec)})
