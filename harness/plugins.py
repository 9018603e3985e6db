"""Every registry in one place: tasks, systems, metric profiles and training recipes.

Built-in plug-ins are listed here as ``"module:attr"`` strings (imported only when asked for, so
``dialbench list`` never imports torch). Other packages add plug-ins without editing dialbench by
declaring entry points in the groups below, e.g. in their ``pyproject.toml``::

    [project.entry-points."dialbench.systems"]
    my_system = "my_package.system:MySystem"

This module names plug-in modules but imports none of them, so it belongs to the API floor.
"""
from __future__ import annotations

from harness.registry import Registry

TASKS: Registry = Registry("task", entry_point_group="dialbench.tasks")
for _name, _target in (
    ("dolphin_summarization", "tasks.dolphin:DolphinSummarizationTask"),
    ("dolphin_compression", "tasks.dolphin:DolphinCompressionTask"),
    ("dolphin_response", "tasks.dolphin:DolphinResponseTask"),
    ("esconv_strategy", "tasks.esconv:ESConvStrategyTask"),
    ("memorybank_probe", "tasks.memorybank:MemoryBankProbeTask"),
    ("convai2_persona", "tasks.convai2:ConvAI2PersonaTask"),
    ("open_dialogue", "tasks.open_dialogue:OpenDialogueTask"),
):
    TASKS.add_lazy(_name, _target)

SYSTEMS: Registry = Registry("system", entry_point_group="dialbench.systems")
for _name, _target in (
    ("copy_last", "baselines.copy_last:CopyLastSystem"),
    ("retrieval", "baselines.retrieval:RetrievalSystem"),
    ("zero_shot_lm", "baselines.zero_shot_lm:ZeroShotLMSystem"),
    ("gpt2_dialogue", "models.gpt2_dialogue.system:GPT2DialogueSystem"),
    ("spt", "models.spt.system:SPTSystem"),
    ("magic", "models.magic.system:MagicSystem"),
    ("comedy", "models.comedy.system:ComedySystem"),
    ("memorybank", "models.memorybank.system:MemoryBankSystem"),
    ("silicon_friend", "models.memorybank.system:SiliconFriendSystem"),
):
    SYSTEMS.add_lazy(_name, _target)

PROFILES: Registry = Registry("metric profile", entry_point_group="dialbench.profiles")
for _name, _attr in (("nlgeval", "NLGEVAL"), ("nlgeval_magic", "NLGEVAL_MAGIC"), ("spt", "SPT"),
                     ("parlai", "PARLAI"), ("memorybank", "MEMORYBANK"), ("dolphin", "DOLPHIN"), ("basic", "BASIC")):
    PROFILES.add_lazy(_name, f"harness.metrics.profiles:{_attr}")

RECIPES: Registry = Registry("training recipe", entry_point_group="dialbench.recipes")
for _name, _target in (
    ("gpt2_dialogue", "models.gpt2_dialogue.recipe:GPT2DialogueRecipe"),
    ("spt", "models.spt.recipe:SPTRecipe"),
    ("magic", "models.magic.recipe:MagicRecipe"),
    ("comedy", "models.comedy.recipe:ComedyRecipe"),
    ("silicon_friend", "models.memorybank.recipe:SiliconFriendRecipe"),
):
    RECIPES.add_lazy(_name, _target)

__all__ = ["TASKS", "SYSTEMS", "PROFILES", "RECIPES"]
