"""Training stage 1: the strategy model, a causal LM fine-tuned with LoRA on q/v (systems.md section 6.2).

Records pair MAGIC's prompt (``prompt.py``) with the motivation target; the loss covers the target
and eos only. The published run used LLaMA-Factory (``--finetuning_type lora --lora_target
q_proj,v_proj`` with its default rank 8, alpha 16, dropout 0) on Llama-2-7b-hf; here the same
adapter is trained through the shared engine (peft). ``tiny`` uses the embedded SmolLM2-135M with
the adapter only in its last 4 layers, because a full backward pass through 30 layers runs at ~14
tokens/s on a shared 2-core CPU; it reads the seeker's last turn only (``prompt_turns`` 1), trains
on 480 class-balanced examples (``sampling``; the evenly spaced sample keeps ESConv's skew and the
adapter learned only the class prior: 0 of 32 held-out last turns right) for 6 epochs at lr 1e-2
(at 1e-3 the class tokens' loss stayed at the prior's for 6 epochs), each epoch running only the
adapted layers (``frozen_states``, ``frozen_states.py``).

``shared_header`` (tiny): every prompt starts with the same task header (218 SmolLM2 tokens, about
two thirds of a prompt), so each batch runs the header once, repeats its key/value cache over the
batch and feeds only each example's clip and target after it; the logits are computed at the
target positions only. The loss equals the plain path's (same tokens, positions and attention; a
unit test checks it) at about a third of the compute. ``max_length`` then bounds header + clip +
target, the clip losing its oldest tokens first, so the header is never cut (the plain path cuts
over-long prompts from the left, header first).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError, first_line
from harness.records import Example
from models.magic.data import SAMPLINGS, TASK, balanced, load_motivations, split_examples, spread
from models.magic.prompt import HEADER, build_prompt, build_target
from models.magic.shared_header import SharedHeaderCollator, make_shared_header_trainer
from training.adapters import AdapterSpec, apply_adapter
from training.collate import PaddingCollator, count_target_tokens, encode_segments
from training.config import Preset, TrainConfig
from training.recipe import Recipe, TrainingData, TrainingJob

STRATEGY_PRESETS = {
    "tiny": Preset(
        name="tiny",
        description="embedded SmolLM2-135M-Instruct + LoRA r=8 on q/v of the last 4 layers; 480 class-balanced "
                    "examples, the seeker's last turn after a shared header, 6 epochs at lr 1e-2 from frozen "
                    "lower-layer states (minutes on 2 CPU cores)",
        train=TrainConfig(learning_rate=1e-2, epochs=6, batch_size=8, schedule="cosine", warmup=0.1,
                          logging_steps=5, cpu_threads=2, save_total_limit=1),
        model={"base": "embedded:smollm2-135m-instruct", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
               "lora_last_layers": 4},
        data={"max_length": 448, "prompt_turns": 1, "max_train_examples": 480, "max_valid_examples": 16,
              "train_fraction": 0.8, "shared_header": True, "sampling": "balanced", "frozen_states": True},
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


def header_ids(tokenizer: Any) -> list[int]:
    """Return the token ids every prompt starts with: the task header, with the special tokens the
    generation engine adds to a plain prompt (Llama's <s>, none for SmolLM2)."""
    return list(tokenizer(HEADER)["input_ids"])


def strategy_records(tokenizer: Any, examples: Sequence[Example], motivations: Sequence[str] | None,
                     max_length: int, prompt_turns: int | None,
                     shared_header: Sequence[int] | None = None) -> list[dict[str, list[int]]]:
    """Return prompt -> target features (loss on the target and eos).

    With ``shared_header`` (the header's ids) each row holds only what follows the header, which
    must tokenize exactly as the header's ids then the rest (checked: a prompt whose tokens cross
    the boundary is a UserError, never silently mis-aligned).
    """
    rows = []
    header = list(shared_header) if shared_header is not None else []
    for index, example in enumerate(examples):
        # special tokens as the generation engine renders a plain prompt (Llama's <s>, none for SmolLM2)
        prompt = tokenizer(build_prompt(example.context, prompt_turns))["input_ids"]
        if shared_header is not None:
            if list(prompt[:len(header)]) != header:
                raise UserError(f"example {example.id}: the strategy prompt does not tokenize as the shared header "
                                "followed by the clip; train with shared_header off")
            prompt = prompt[len(header):]
        target = build_target(example.label or "Others", motivations[index] if motivations else None)
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        row = encode_segments([(prompt, False), (target_ids, True)], max_length=max_length - len(header))
        if row is not None:
            rows.append(row)
    return rows


class MagicStrategyRecipe(Recipe):
    """LoRA fine-tuning of the strategy model on MAGIC's prompts."""

    system = "magic"
    tasks = (TASK,)
    presets = STRATEGY_PRESETS
    option_names = ("motivations", "strategy_base", "sampling")

    def sampling(self, preset: Preset) -> str:
        """Return how a ``max_train_examples`` budget picks its examples (option ``sampling``, else the preset's)."""
        value = str(self.options.get("sampling") or preset.data.get("sampling", "spread"))
        if value not in SAMPLINGS:
            raise UserError(f"magic option sampling: '{value}' is not one of {', '.join(SAMPLINGS)}")
        return value

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
        sampling = self.sampling(preset)
        picked = (balanced([e.label for e in train], limit_train) if sampling == "balanced"
                  else spread(list(range(len(train))), limit_train))
        train_examples = [train[i] for i in picked]
        train_motivations = [motivations[i] for i in picked] if motivations else None
        valid_examples = spread(valid, preset.data.get("max_valid_examples"))
        max_length = int(preset.data["max_length"])
        turns = preset.data.get("prompt_turns")
        shared = header_ids(tokenizer) if preset.data.get("shared_header") else None
        train_rows = strategy_records(tokenizer, train_examples, train_motivations, max_length, turns, shared)
        valid_rows = strategy_records(tokenizer, valid_examples, None, max_length, turns, shared)
        if not train_rows:
            raise UserError(f"magic strategy stage: none of the {len(train_examples)} training prompts fits max_length "
                            f"{max_length} (with the task header); raise max_length or lower prompt_turns")
        collator: Any = PaddingCollator(pad_id=tokenizer.pad_token_id)
        trainer_class = None
        if shared is not None:
            collator = SharedHeaderCollator(pad_id=tokenizer.pad_token_id, header=tuple(shared))
            trainer_class = make_shared_header_trainer()
        frozen = 0
        if shared is not None and preset.data.get("frozen_states"):
            from models.magic.frozen_states import first_trainable_layer, with_frozen_states

            frozen = first_trainable_layer(model)
            train_rows, valid_rows, collator, trainer_class = with_frozen_states(model, shared, train_rows, valid_rows,
                                                                                 tokenizer.pad_token_id, frozen)
        return TrainingJob(model=model, tokenizer=tokenizer, train_dataset=train_rows, eval_dataset=valid_rows or None,
                           config=preset.train, collator=collator, trainer_class=trainer_class,
                           meta={"part": "strategy", "base": base_spec, "train_examples": len(train_rows),
                                 "valid_examples": len(valid_rows), "motivations": bool(motivations),
                                 "prompt_turns": turns, "shared_header": shared is not None,
                                 "sampling": sampling, "frozen_layers": frozen,
                                 "train_target_tokens": count_target_tokens(train_rows)})
