"""Training recipe of ``spt`` (systems.md section 2): presets, data shaping and the job for the shared engine.

Data: each ``--data`` file is read by its task plug-in (``convai2_persona``); the last
``holdout_last`` dialogues of every file are left out of training and validation (for measuring on
dialogues never trained on), then the first ``train_fraction`` of the rest train and the remainder
validates (an unshuffled head split), unless ``--valid`` gives a file. One example per bot reply,
in SPT's template (``format.py``), loss on the target and its eos.

Presets: ``tiny`` (the embedded SmolLM2-135M-Instruct, frozen, K=4, 8 virtual tokens, sized for
2 CPU cores), ``paper-opt-125m``/``-1.3b``/``-2.7b`` and ``paper-llama2-7b-chat`` (published K,
virtual tokens, loss weights, lr 1e-4, batch 2, 1 epoch, seed 3407, no clipping; launch them with
``--deepspeed zero2``, the paper's ZeRO-2 config), and a ``-pt`` variant of each (K=1, no selector:
the paper's prompt-tuning baseline). Every preset setting can be changed with
``--set spt.NAME=VALUE`` (SPTConfig fields, e.g. ``spt.pooling=released``, and the data keys above).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.errors import UserError
from harness.records import Example
from models.spt.config import SPTConfig
from models.spt.format import SPTFormat
from training.collate import count_target_tokens
from training.config import Preset, TrainConfig
from training.recipe import Recipe, TrainingData, TrainingJob, load_dialogues, split_head

TINY_BASE = "embedded:smollm2-135m-instruct"
DATA_DEFAULTS = {"train_fraction": 0.9, "holdout_last": 0, "max_train_examples": 0, "max_valid_examples": 0}
"""Data keys every preset understands (0 = no limit)."""


def _paper(name: str, base: str, virtual: int, weight: float, dtype: str) -> Preset:
    return Preset(
        name=name,
        description=f"{base} frozen, K=4 prompts x {virtual} virtual tokens, selection/contrastive weights {weight}, "
                    "lr 1e-4, batch 2, 1 epoch, seed 3407, no clipping, best valid loss kept (launch with --deepspeed zero2)",
        train=TrainConfig(learning_rate=1e-4, epochs=1, batch_size=2, schedule="constant", warmup=0.0,
                          weight_decay=0.0, max_grad_norm=None, seed=3407, logging_steps=50,
                          gradient_checkpointing=True),
        model={"base": base, "dtype": dtype,
               "spt": {"num_prompts": 4, "num_virtual_tokens": virtual, "selection_weight": weight,
                       "contrastive_weight": weight, "max_length": 512}},
        data=dict(DATA_DEFAULTS),
    )


def pt_variant(preset: Preset) -> Preset:
    """Return the prompt-tuning baseline of ``preset``: one prompt, no selector, NLL only."""
    spt = {**preset.model["spt"], "num_prompts": 1, "selector": False}
    return replace(preset, name=f"{preset.name}-pt", model={**preset.model, "spt": spt},
                   description=f"prompt-tuning baseline (K=1, no selector) of: {preset.description}")


TINY = Preset(
    name="tiny",
    description="embedded SmolLM2-135M-Instruct frozen, K=4 x 8 virtual tokens (vocabulary init), last partner turn as "
                "context, 96 tokens, 96 training examples, lr 2e-2, batch 2, 1 epoch: under 20 minutes on 2 CPU cores",
    train=TrainConfig(learning_rate=2e-2, epochs=1, batch_size=2, schedule="constant", warmup=0.0, weight_decay=0.0,
                      max_grad_norm=1.0, seed=3407, logging_steps=4, cpu_threads=1),
    model={"base": TINY_BASE, "dtype": "float32",
           "spt": {"num_prompts": 4, "num_virtual_tokens": 8, "selection_weight": 0.4, "contrastive_weight": 0.4,
                   "max_length": 96, "max_context_turns": 1, "prompt_init": "vocab"}},
    data={**DATA_DEFAULTS, "max_train_examples": 96, "max_valid_examples": 8},
)
"""Sized by measurement: one K x B = 8-row step of SmolLM2 at ~90 tokens costs ~6 s of one core
(forward plus the backward into the prompts); the shared 2-core machine gives it a fraction of that."""

_PAPER = [
    _paper("paper-opt-125m", "facebook/opt-125m", 8, 0.4, "float32"),
    _paper("paper-opt-1.3b", "facebook/opt-1.3b", 8, 0.4, "float32"),
    _paper("paper-opt-2.7b", "facebook/opt-2.7b", 8, 0.4, "float32"),
    _paper("paper-llama2-7b-chat", "meta-llama/Llama-2-7b-chat-hf", 1, 1.0, "float16"),
]
PRESETS: dict[str, Preset] = {p.name: p for p in [TINY, pt_variant(TINY)] + [q for p in _PAPER for q in (p, pt_variant(p))]}


def evenly(items: Sequence[Any], limit: int) -> list[Any]:
    """Return at most ``limit`` items spread evenly over ``items`` (0 keeps all), in order."""
    if not limit or len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


class SPTRecipe(Recipe):
    """Prompt tables + normaliser on a frozen causal LM, trained with SPT's four-term objective."""

    system = "spt"
    tasks = ("convai2_persona",)
    presets = PRESETS

    def with_options(self, preset: Preset, options: Mapping[str, Any]) -> Preset:
        """Return ``preset`` with ``--set spt.NAME=VALUE`` options: data keys or SPTConfig fields."""
        data = dict(preset.data)
        spt = dict(preset.model.get("spt", {}))
        model = dict(preset.model)
        fields = set(SPTConfig.__dataclass_fields__) - {"base"}
        for name, value in options.items():
            if name in DATA_DEFAULTS:
                data[name] = value
            elif name in fields:
                spt[name] = value
            elif name in ("base", "dtype"):
                model[name] = value
            else:
                valid = sorted(set(DATA_DEFAULTS) | fields | {"base", "dtype"})
                raise UserError(f"spt: unknown option '{name}'; valid: {', '.join(valid)}")
        return replace(preset, data=data, model={**model, "spt": spt})

    def split(self, preset: Preset, data: TrainingData) -> tuple[list[Example], list[Example], dict[str, Any]]:
        """Return (train, valid) examples and what was held out (see the module docstring)."""
        from harness.plugins import TASKS

        holdout = int(preset.data.get("holdout_last", 0))
        fraction = float(preset.data.get("train_fraction", 0.9))
        train, valid, held = [], [], {}
        for task_name, path in data.train.items():
            task = TASKS.get(task_name)()
            dialogues = load_dialogues(task_name, path)
            if holdout:
                if holdout >= len(dialogues):
                    raise UserError(f"{path}: holdout_last={holdout} leaves no training dialogue ({len(dialogues)} in file)")
                held[str(path)] = [d.id for d in dialogues[-holdout:]]
                dialogues = dialogues[:-holdout]
            if task_name in data.valid:
                head, rest = dialogues, load_dialogues(task_name, data.valid[task_name])
            else:
                head, rest = split_head(dialogues, fraction)
            train += task.build_examples(head)
            valid += task.build_examples(rest)
        limit_train, limit_valid = int(preset.data.get("max_train_examples", 0)), int(preset.data.get("max_valid_examples", 0))
        return evenly(train, limit_train), evenly(valid, limit_valid), held

    def base_model(self, preset: Preset, base: str | None, texts: Sequence[str]) -> tuple[Any, Any, str]:
        """Return (frozen base, tokenizer, base name): a loaded checkpoint or a random-init config."""
        arch = preset.model.get("random_init")
        if arch:
            from transformers import AutoConfig, AutoModelForCausalLM

            from training.tokenizer import train_bpe_tokenizer

            tokenizer = train_bpe_tokenizer(texts, vocab_size=int(arch.get("vocab_size", 500)))
            settings = {k: v for k, v in arch.items() if k not in ("model_type", "vocab_size")}
            config = AutoConfig.for_model(arch["model_type"], vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                          eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id, **settings)
            return AutoModelForCausalLM.from_config(config), tokenizer, "base"
        from harness.checkpoints.loader import load_model

        name = base or str(preset.model["base"])
        loaded = load_model(name, dtype=str(preset.model.get("dtype", "float32")), device="cpu")
        if loaded.kind != "causal":
            raise UserError(f"base model '{name}' is a {loaded.kind} model; SPT needs a causal LM")
        tokenizer = loaded.tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return loaded.model, tokenizer, name

    def build(self, preset: Preset, data: TrainingData, *, seed: int, tokenizer_dir: Path | None = None,
              base: str | None = None) -> TrainingJob:
        """Return the job: frozen base + SPT module, rows in the published template, SPT's collator and Trainer."""
        import torch

        from models.spt.model import SPTModel
        from models.spt.trainer import SPTCollator, trainer_class

        options = dict(preset.model.get("spt", {}))
        probe = SPTConfig(base=base or str(preset.model.get("base", "base")), **options)  # bad K fails before loading
        train, valid, held = self.split(preset, data)
        if not any(r.strip() for e in train for r in e.references[:1]):
            files = ", ".join(f"{task}={path}" for task, path in data.train.items())
            raise UserError(f"{files}: no training targets for spt (needs bot replies with text)")
        texts = [t.text for e in train for t in e.context] + [r for e in train for r in e.references]
        model_base, tokenizer, base_name = self.base_model(preset, base, texts)
        if tokenizer_dir is not None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        config = replace(probe, base=base_name)
        fmt = SPTFormat(tokenizer, config.max_length, config.max_context_turns,
                        drop_eos_when_pad=config.pad_eos_loss == "released")
        train_rows, valid_rows = fmt.rows(train), fmt.rows(valid)
        if not train_rows:
            files = ", ".join(f"{task}={path}" for task, path in data.train.items())
            raise UserError(f"{files}: no training targets for spt (needs bot replies with text)")
        torch.manual_seed(seed)
        model = SPTModel(model_base, config, fmt.pad_id)
        model.tokenizer = tokenizer
        collator = SPTCollator(fmt.pad_id, config.selector_input, config.contrastive_text,
                               config.contrastive_bleu_threshold, config.selector)
        return TrainingJob(
            model=model, tokenizer=tokenizer, train_dataset=train_rows, eval_dataset=valid_rows or None,
            config=preset.train, collator=collator, trainer_class=trainer_class(),
            meta={"train_examples": len(train_rows), "valid_examples": len(valid_rows),
                  "train_target_tokens": count_target_tokens(train_rows), "held_out_dialogues": held,
                  "spt": config.to_json(), "quirks": config.quirks(),
                  "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)},
        )
