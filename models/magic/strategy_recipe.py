"""Training stage 1: the strategy model, a causal LM fine-tuned with LoRA on q/v (systems.md section 6.2).

Records pair MAGIC's prompt (``prompt.py``) with the motivation target; the loss covers the target
and eos only. The published run used LLaMA-Factory (``--finetuning_type lora --lora_target
q_proj,v_proj`` with its default rank 8, alpha 16, dropout 0) on Llama-2-7b-hf; here the same
adapter is trained through the shared engine (peft). ``tiny`` uses the embedded SmolLM2-135M with
the adapter only in its last 4 layers, a subsample of the examples and the last 3 turns of each
clip, because a full backward pass through 30 layers runs at ~14 tokens/s on a shared 2-core CPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError, first_line
from harness.records import Example
from models.magic.data import TASK, load_motivations, split_examples, spread
from models.magic.prompt import build_prompt, build_target
from training.adapters import AdapterSpec, apply_adapter
from training.collate import PaddingCollator, count_target_tokens, encode_segments
from training.config import Preset, TrainConfig
from training.recipe import Recipe, TrainingData, TrainingJob

STRATEGY_PRESETS = {
    "tiny": Preset(
        name="tiny",
        description="embedded SmolLM2-135M-Instruct + LoRA r=8 on q/v of the last 4 layers; 48 examples, "
                    "3-turn clips, 1 epoch (minutes on 2 CPU cores)",
        train=TrainConfig(learning_rate=3e-4, epochs=1, batch_size=4, schedule="cosine", warmup=0.0,
                          logging_steps=2, cpu_threads=2, save_total_limit=1),
        model={"base": "embedded:smollm2-135m-instruct", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
               "lora_last_layers": 4},
        data={"max_length": 288, "prompt_turns": 3, "max_train_examples": 48, "max_valid_examples": 8,
              "train_fraction": 0.8},
    ),
    "paper": Preset(
        name="paper",
        description="Llama-2-7b-hf + LoRA on q_proj/v_proj (LLaMA-Factory defaults r=8, alpha 16, dropout 0), "
                    "lr 5e-5, 5 epochs, batch 16 x 4, cosine (published fp16; bf16 where the GPU has it)",
        train=TrainConfig(learning_rate=5e-5, epochs=5, batch_size=16, grad_accum=4, schedule="cosine",
                          eval_steps=100, logging_steps=10, save_total_limit=3),
        model={"base": "meta-llama/Llama-2-7b-hf", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
               "lora_last_layers": None},
        data={"max_length": 4096, "prompt_turns": None, "max_train_examples": None, "max_valid_examples": None,
              "train_fraction": 0.8},
    ),
}


def load_causal_lm(spec: str) -> tuple[Any, Any]:
    """Return a fresh, trainable (model, tokenizer) for a model source (embedded, folder, gguf, hub id)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.checkpoints.loader import local_folder
    from harness.checkpoints.source import parse_source

    folder = local_folder(parse_source(spec))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load strategy base model '{spec}' ({first_line(err)})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def strategy_records(tokenizer: Any, examples: Sequence[Example], motivations: Sequence[str] | None,
                     max_length: int, prompt_turns: int | None) -> list[dict[str, list[int]]]:
    """Return prompt -> target features (loss on the target and eos)."""
    rows = []
    for index, example in enumerate(examples):
        # special tokens as the generation engine renders a plain prompt (Llama's <s>, none for SmolLM2)
        prompt = tokenizer(build_prompt(example.context, prompt_turns))["input_ids"]
        target = build_target(example.label or "Others", motivations[index] if motivations else None)
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        row = encode_segments([(prompt, False), (target_ids, True)], max_length=max_length)
        if row is not None:
            rows.append(row)
    return rows


class MagicStrategyRecipe(Recipe):
    """LoRA fine-tuning of the strategy model on MAGIC's prompts."""

    system = "magic"
    tasks = (TASK,)
    presets = STRATEGY_PRESETS
    option_names = ("motivations", "strategy_base")

    def build(self, preset: Preset, data: TrainingData, *, seed: int, tokenizer_dir: Path | None = None,
              base: str | None = None) -> TrainingJob:
        """Return the LoRA job (motivations from the ``motivations`` option, aligned with the train examples)."""
        train, valid = split_examples(data, float(preset.data.get("train_fraction", 0.8)))
        motivations = load_motivations(self.options.get("motivations"), train)
        base_spec = str(self.options.get("strategy_base") or preset.model["base"])
        model, tokenizer = load_causal_lm(base_spec)
        last = preset.model.get("lora_last_layers")
        layers = getattr(model.config, "num_hidden_layers", None)
        spec = AdapterSpec(r=int(preset.model["lora_r"]), alpha=int(preset.model["lora_alpha"]),
                           dropout=float(preset.model["lora_dropout"]), target_modules=("q_proj", "v_proj"))
        model = apply_adapter(model, spec, layers=list(range(layers - int(last), layers)) if last and layers else None)
        limit_train = preset.data.get("max_train_examples")
        picked = spread(list(range(len(train))), limit_train)
        train_examples = [train[i] for i in picked]
        train_motivations = [motivations[i] for i in picked] if motivations else None
        valid_examples = spread(valid, preset.data.get("max_valid_examples"))
        max_length = int(preset.data["max_length"])
        turns = preset.data.get("prompt_turns")
        train_rows = strategy_records(tokenizer, train_examples, train_motivations, max_length, turns)
        valid_rows = strategy_records(tokenizer, valid_examples, None, max_length, turns)
        return TrainingJob(model=model, tokenizer=tokenizer, train_dataset=train_rows, eval_dataset=valid_rows or None,
                           config=preset.train, collator=PaddingCollator(pad_id=tokenizer.pad_token_id),
                           meta={"part": "strategy", "base": base_spec, "train_examples": len(train_rows),
                                 "valid_examples": len(valid_rows), "motivations": bool(motivations),
                                 "prompt_turns": turns, "train_target_tokens": count_target_tokens(train_rows)})
