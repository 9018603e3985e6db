"""Task plug-ins: one module per task; ``TASKS`` maps each task id to its class, imported lazily."""
from __future__ import annotations

from pathlib import Path

from harness.registry import Registry
from harness.task import Task

TASKS: Registry[type[Task]] = Registry("task")
TASKS.add_lazy("dolphin_summarization", "tasks.dolphin:DolphinSummarizationTask")
TASKS.add_lazy("dolphin_compression", "tasks.dolphin:DolphinCompressionTask")
TASKS.add_lazy("dolphin_response", "tasks.dolphin:DolphinResponseTask")
TASKS.add_lazy("esconv_strategy", "tasks.esconv:ESConvStrategyTask")
TASKS.add_lazy("memorybank_probe", "tasks.memorybank:MemoryBankProbeTask")
TASKS.add_lazy("convai2_persona", "tasks.convai2:ConvAI2PersonaTask")
TASKS.add_lazy("open_dialogue", "tasks.open_dialogue:OpenDialogueTask")


def samples_dir() -> Path:
    """Return the folder of bundled synthetic samples (written by the project, never real data)."""
    return Path(__file__).resolve().parent / "samples"
