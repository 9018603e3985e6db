"""Training recipes, one per trainable system: ``RECIPES`` maps a system name to its recipe class.

A recipe knows its system's published training procedure (data format, label masking, model,
presets); the engine in ``training/engine.py`` knows how to run any of them. Planned plug-ins:
``comedy`` (full SFT on ZeRO-2, then DPO on ZeRO-3), ``spt`` (K prompt-tuned soft prompts, a custom
loss via ``TrainingJob.trainer_hooks``), ``magic`` (BART seq2seq + LoRA strategy model) and
``silicon_friend`` (LoRA SFT) — each a module here registered below.
"""
from __future__ import annotations

from harness.registry import Registry
from training.recipes.base import Recipe

RECIPES: Registry[type[Recipe]] = Registry("training recipe")
RECIPES.add_lazy("gpt2_dialogue", "training.recipes.gpt2_dialogue:GPT2DialogueRecipe")
