"""Training recipe of ``comedy``: stage 1 mixed-task SFT (``sft.py``), stage 2 DPO (``dpo.py``).

``dialbench train comedy --preset P --data dolphin_X=FILE ...`` runs stage 1; ``--stage dpo --base
STAGE1_DIR`` continues from its output with the DPO rows of the data (policy and frozen reference
both start from STAGE1_DIR). Without ``--valid`` the first 85% of each file's rows train and the
rest are held out (the released DPO evaluates on its training file; we do not).

Presets: ``tiny`` starts from a random 2-layer LLaMA (128 dims) with a SentencePiece tokenizer
trained on the training split (``vocab.py`` says why); ``paper`` fine-tunes a LLaMA-2 base fully
with the published hyperparameters (run it under ``--deepspeed training/deepspeed/comedy_sft_zero2.json``
for stage 1 and ``comedy_dpo_zero3.json`` for stage 2). Switches: ``comedy.pad_loss`` and
``comedy.schedule_length`` (``intended``/``released``; see ``sft.py`` and ``dpo.py``).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import Dialogue
from models.comedy import dpo, sft
from training.collate import PaddingCollator, count_target_tokens
from training.config import Preset, TrainConfig
from training.recipe import Recipe, TrainingData, TrainingJob, load_dialogues, split_head

PAPER_BASE = "meta-llama/Llama-2-13b-hf"
TINY_MODEL = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 4, "max_position_embeddings": 4096, "vocab_size": 1200,
              "char_coverage": 0.98}

PRESETS = {
    "tiny": Preset(
        name="tiny",
        description="random-init 2-layer LLaMA (128 dims) + SentencePiece tokenizer trained on the training split; "
                    "SFT then DPO in minutes on 2 CPU cores",
        train=TrainConfig(learning_rate=3e-3, epochs=16, batch_size=8, schedule="cosine", warmup=0.05, weight_decay=0.1,
                          adam_betas=(0.9, 0.95), max_grad_norm=1.0, eval_steps=8, logging_steps=4, seed=42,
                          cpu_threads=1, save_total_limit=1),
        model=TINY_MODEL,
        data={"stage": "sft", "max_seq_len": 1024, "train_fraction": 0.85, "pad_loss": "intended",
              "schedule_length": "intended"},
    ),
    "paper": Preset(
        name="paper",
        description="LLaMA-2 full fine-tuning as published: lr 1e-5, wd 0.1, betas (0.9, 0.95), cosine with 400 "
                    "warmup steps, 3 epochs, batch 4 per device, max length 2048, clipping 1.0, seed 42, bf16, ZeRO-2",
        train=TrainConfig(learning_rate=1e-5, epochs=3, batch_size=4, schedule="cosine", warmup=400, weight_decay=0.1,
                          adam_betas=(0.9, 0.95), max_grad_norm=1.0, eval_steps=1000, logging_steps=10, seed=42,
                          gradient_checkpointing=True),
        model={"base": PAPER_BASE},
        data={"stage": "sft", "max_seq_len": 2048, "train_fraction": 0.85, "pad_loss": "intended",
              "schedule_length": "intended", "deepspeed": "training/deepspeed/comedy_sft_zero2.json"},
    ),
}

DPO_TRAIN = {
    "tiny": TrainConfig(learning_rate=1e-3, epochs=3, batch_size=8, schedule="cosine", warmup=0.1, weight_decay=0.0,
                        adam_betas=(0.9, 0.95), max_grad_norm=1.0, logging_steps=3, eval_steps=7, seed=1234,
                        method="dpo", dpo_beta=0.1, dpo_sft_weight=0.1, cpu_threads=1, save_total_limit=1),
    "paper": TrainConfig(learning_rate=1e-5, epochs=2, batch_size=1, schedule="cosine", warmup=10, weight_decay=0.0,
                         adam_betas=(0.9, 0.95), max_grad_norm=1.0, logging_steps=10, seed=1234, method="dpo",
                         dpo_beta=0.01, dpo_sft_weight=0.1, max_length=2048, gradient_checkpointing=True),
}
"""Stage-2 settings per preset. Paper: beta 0.01 + 0.1 x SFT, lr 1e-5, 2 epochs, 10 warmup steps, ZeRO-3.
Tiny uses beta 0.1 and a larger lr: with beta 0.01 a 2-layer model's margin moves too little in minutes."""


class ComedyRecipe(Recipe):
    """COMEDY's two training stages on Dolphin data (see the module docstring)."""

    system = "comedy"
    tasks = sft.DOLPHIN_TASKS
    presets = PRESETS
    stage_names = ("sft", "dpo")
    switches = {"pad_loss": ("intended", "released"), "schedule_length": ("intended", "released")}

    def for_stage(self, preset: Preset, stage: str | None, base: str | None) -> Preset:
        """Return the DPO variant of ``preset`` for ``--stage dpo`` (which needs ``--base STAGE1_DIR``)."""
        preset = super().for_stage(preset, stage, base)
        if stage != "dpo":
            return preset
        if not base:
            raise UserError("--stage dpo needs --base STAGE1_DIR (the output of `dialbench train comedy` stage 1)")
        if not Path(base).is_dir():
            raise UserError(f"--base {base}: stage-1 directory not found")
        deepspeed = str(preset.data.get("deepspeed", "")).replace("comedy_sft_zero2", "comedy_dpo_zero3")
        return replace(preset, name=f"{preset.name}-dpo", train=DPO_TRAIN.get(preset.name, DPO_TRAIN["paper"]),
                       data={**preset.data, "stage": "dpo", **({"deepspeed": deepspeed} if deepspeed else {})})

    # --- data -------------------------------------------------------------------------------------
    def files(self, data: TrainingData, fraction: float) -> tuple[list[tuple[str, list[Dialogue]]], list[tuple[str, list[Dialogue]]]]:
        """Return (train, valid) dialogues per file: a given valid file, else each file's head split."""
        train, valid = [], []
        for task, path in data.train.items():
            dialogues = load_dialogues(task, path)
            if task in data.valid:
                train.append((task, dialogues))
            else:
                head, rest = split_head(dialogues, fraction)
                train.append((task, head))
                valid.append((task, rest))
        valid += [(task, load_dialogues(task, path)) for task, path in data.valid.items()]
        return train, valid

    # --- model ------------------------------------------------------------------------------------
    def tokenizer(self, preset: Preset, texts: Sequence[str], tokenizer_dir: Path | None, base: str | None) -> Any:
        """Return the saved tokenizer on resume, the base's (pad = eos), or the tiny SentencePiece one."""
        from transformers import AutoTokenizer

        from models.comedy.vocab import tiny_tokenizer

        if tokenizer_dir is not None or base:
            tokenizer = _load(AutoTokenizer, str(tokenizer_dir or base))
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            return tokenizer
        return tiny_tokenizer(texts, int(preset.model.get("vocab_size", 2000)), float(preset.model.get("char_coverage", 1.0)))

    def model(self, preset: Preset, tokenizer: Any, base: str | None) -> Any:
        """Return the base (dropout forced to 0, as released) or a random LLaMA of the preset's size."""
        from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

        if base:  # bf16 weights where training runs in bf16 (GPU), fp32 on CPU (COMEDY's .bin is bf16)
            import torch

            bf16 = preset.train.bf16 and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            model = _load(AutoModelForCausalLM, base, attention_dropout=0.0, dtype=torch.bfloat16 if bf16 else torch.float32)
        else:
            sizes = {k: v for k, v in preset.model.items() if k not in ("vocab_size", "char_coverage")}
            model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
                                                 tie_word_embeddings=False, attention_dropout=0.0, **sizes))
        model.config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        return model

    # --- the job ----------------------------------------------------------------------------------
    def build(self, preset: Preset, data: TrainingData, *, seed: int, tokenizer_dir: Path | None = None,
              base: str | None = None) -> TrainingJob:
        """Return the stage-1 (SFT) or stage-2 (DPO) job for ``preset``."""
        stage = preset.data.get("stage", "sft")
        base = base or (preset.model.get("base") if stage == "sft" else None)
        train, valid = self.files(data, float(preset.data.get("train_fraction", 0.85)))
        max_len = int(preset.data.get("max_seq_len", 2048))
        if stage == "dpo":
            return self._dpo_job(preset, train, valid, tokenizer_dir, base, max_len)
        return self._sft_job(preset, train, valid, tokenizer_dir, base, max_len)

    def _sft_job(self, preset: Preset, train: list, valid: list, tokenizer_dir: Path | None, base: str | None,
                 max_len: int) -> TrainingJob:
        train_rows, counts = sft.collect(train)
        valid_rows, valid_counts = sft.collect(valid)
        if not train_rows:
            raise UserError("no stage-1 training rows: give Dolphin files with references (dialbench format) or SFT rows")
        tokenizer = self.tokenizer(preset, [sft.render(r) for r in train_rows], tokenizer_dir, base)
        model = self.model(preset, tokenizer, base)
        bos, eos = sft.check_markers(tokenizer)
        pad_loss = str(preset.data.get("pad_loss", "intended"))
        encode = lambda rows: [sft.encode(tokenizer, r, max_len=max_len, pad_loss=pad_loss, bos=bos, eos=eos) for r in rows]
        train_features, valid_features = encode(train_rows), encode(valid_rows)
        kept_train = [f for f in train_features if f is not None]
        kept_valid = [f for f in valid_features if f is not None]
        released_schedule = preset.data.get("schedule_length") == "released"
        return TrainingJob(
            model=model, tokenizer=tokenizer, train_dataset=kept_train, eval_dataset=kept_valid or None,
            config=preset.train, collator=PaddingCollator(pad_id=eos),
            trainer_class=sft.released_schedule_trainer() if released_schedule else None,
            meta={"stage": "sft", "train_rows": counts, "valid_rows": valid_counts, "train_examples": len(kept_train),
                  "valid_examples": len(kept_valid), "dropped_too_long": {"train": len(train_features) - len(kept_train),
                                                                           "valid": len(valid_features) - len(kept_valid)},
                  "train_target_tokens": count_target_tokens(kept_train), "base": base, "vocab_size": len(tokenizer),
                  "switches": {k: preset.data.get(k) for k in self.switches}},
        )

    def _dpo_job(self, preset: Preset, train: list, valid: list, tokenizer_dir: Path | None, base: str | None,
                 max_len: int) -> TrainingJob:
        tokenizer = self.tokenizer(preset, [], tokenizer_dir, base)
        sft.check_markers(tokenizer)

        def pairs(groups: list) -> tuple[list[dict[str, Any]], int]:
            encoded = [dpo.encode_pair(tokenizer, d, max_len) for _, dialogues in groups for d in dialogues
                       if d.meta.get("format") == "dpo"]
            return [e for e in encoded if e is not None], sum(e is None for e in encoded)

        train_pairs, train_dropped = pairs(train)
        valid_pairs, valid_dropped = pairs(valid)
        if not train_pairs:
            raise UserError("--stage dpo: no preference rows in --data (JSON lines with prompt, chosen/ans and rejected)")
        model = self.model(preset, tokenizer, base)
        reference = self.model(preset, tokenizer, base)
        return TrainingJob(
            model=model, tokenizer=tokenizer, train_dataset=train_pairs, eval_dataset=valid_pairs or None,
            config=preset.train, ref_model=reference,
            trainer_class=dpo.comedy_dpo_trainer(exclude_eos=preset.data.get("pad_loss") == "released"),
            meta={"stage": "dpo", "train_pairs": len(train_pairs), "valid_pairs": len(valid_pairs),
                  "dropped_too_long": {"train": train_dropped, "valid": valid_dropped}, "base": base,
                  "switches": {k: preset.data.get(k) for k in self.switches}},
        )


def _load(auto_class: Any, name: str, **kwargs: Any) -> Any:
    """Load a tokenizer/model by name or path (``.bin`` weights with weights_only); failure is one line."""
    try:
        if "Model" in auto_class.__name__:
            kwargs["weights_only"] = True
        return auto_class.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load base model '{name}' ({first}); pass --base PATH to a local copy") from None
