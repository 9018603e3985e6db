"""System plug-ins: one module per system; ``SYSTEMS`` maps each system name to its class, lazily."""
from __future__ import annotations

from harness.registry import Registry
from harness.system import System

SYSTEMS: Registry[type[System]] = Registry("system")
SYSTEMS.add_lazy("copy_last", "baselines.copy_last:CopyLastSystem")
SYSTEMS.add_lazy("retrieval", "baselines.retrieval:RetrievalSystem")
SYSTEMS.add_lazy("zero_shot_lm", "baselines.zero_shot_lm:ZeroShotLMSystem")
SYSTEMS.add_lazy("gpt2_dialogue", "baselines.gpt2_dialogue:GPT2DialogueSystem")
