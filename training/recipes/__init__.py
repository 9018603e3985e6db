"""Training recipes, one per trainable system: ``RECIPES`` maps a system name to its recipe class.

A recipe knows its system's published training procedure (data format, label masking, model,
presets); the engine in ``training/engine.py`` knows how to run any of them. How the planned
recipes plug in (each a module here, registered below):
- ``comedy``: presets per stage, ``sft`` (``encode_segments`` masking Human turns, ZeRO-2) and
  ``dpo`` (``TrainConfig(method="dpo", dpo_beta=0.01, dpo_sft_weight=0.1)``, ZeRO-3, ``--base`` = the
  SFT output);
- ``spt``: ``AdapterSpec(kind="prompt_tuning")`` per prompt and a ``TrainingJob.trainer_class``
  overriding ``compute_loss`` for the selection/fusion/contrastive terms;
- ``magic``: ``TrainConfig(method="seq2seq")`` on BART with ``encode_pair``, plus a LoRA recipe for
  its LLaMA strategy model;
- ``silicon_friend``: LoRA SFT (``AdapterSpec(kind="lora", ...)``) with the prompt masked.
"""
from __future__ import annotations

from harness.registry import Registry
from training.recipes.base import Recipe

RECIPES: Registry[type[Recipe]] = Registry("training recipe")
RECIPES.add_lazy("gpt2_dialogue", "training.recipes.gpt2_dialogue:GPT2DialogueRecipe")
