"""The recipe plug-in API: what a trainable system hands the training engine.

A recipe turns (preset, data files) into a ``TrainingJob``: a model (possibly peft-wrapped), its
tokenizer, tokenised train/valid features, a collator and the TrainConfig. The engine does the rest
(DeepSpeed, schedules, evaluation, checkpoints), so a new system's training is a data-shaping module,
not another training loop. Data is always read through the task plug-ins (``tasks.TASKS``), so a
file that evaluates under a task also trains under it, with the same error messages.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from harness.errors import UserError, unknown_name
from harness.records import Dialogue
from training.config import Preset, TrainConfig


@dataclass(frozen=True)
class TrainingData:
    """Data files per task: ``train`` always, ``valid`` when the user gives a separate valid file."""

    train: Mapping[str, Path]
    valid: Mapping[str, Path] = field(default_factory=dict)


@dataclass
class TrainingJob:
    """Everything the engine needs to run one training; built by a recipe.

    ``trainer_class`` lets a recipe with a custom objective (SPT's selection and fusion losses)
    subclass the Trainer and override ``compute_loss`` while keeping the rest of the engine;
    ``ref_model`` is the frozen DPO reference (None with adapters: peft disables them instead).
    """

    model: Any
    tokenizer: Any
    train_dataset: Sequence[Mapping[str, Any]]
    config: TrainConfig
    collator: Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Any]] | None = None
    eval_dataset: Sequence[Mapping[str, Any]] | None = None
    ref_model: Any = None
    trainer_class: type | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Recipe(ABC):
    """Base class of every training recipe (registered in ``training.recipes.RECIPES``)."""

    system: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]]
    """Tasks whose data this recipe can train on."""
    presets: ClassVar[Mapping[str, Preset]]
    option_names: ClassVar[tuple[str, ...]] = ()
    """Recipe settings a user gives as ``--set NAME=VALUE`` (other names there are TrainConfig fields)."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    def configure(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Keep the recipe's own options from ``overrides``; return the rest (training settings)."""
        self.options = {k: v for k, v in overrides.items() if k in self.option_names}
        return {k: v for k, v in overrides.items() if k not in self.option_names}

    def stages(self) -> list[tuple[str, str, "Recipe"]]:
        """Return (name, sub-folder, recipe) per training stage; [] for a single-model recipe."""
        return []

    def stage_settings(self, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Return the training settings of stage ``name``: plain ones and those prefixed ``name.``."""
        stage_names = {stage for stage, _, _ in self.stages()}
        plain = {k: v for k, v in settings.items() if k.partition(".")[0] not in stage_names}
        return {**plain, **{k.partition(".")[2]: v for k, v in settings.items() if k.startswith(f"{name}.")}}

    def assemble(self, output_dir: Path, summaries: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """Combine the stages' outputs after training (staged recipes); return the run summary."""
        raise NotImplementedError
    stage_names: ClassVar[tuple[str, ...]] = ()
    """Named training stages chosen one per command with ``--stage`` (COMEDY: sft, then dpo on its
    output); empty: one stage. Not to be confused with ``stages()``, parts trained in one command."""
    switches: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """Recipe quirk switches set by ``--set SYSTEM.NAME=VALUE`` (first value = default), kept in ``preset.data``."""


    def for_stage(self, preset: Preset, stage: str | None, base: str | None) -> Preset:
        """Return the preset of training stage ``stage`` (None: the first stage); recipes with stages override."""
        if stage is None:
            return preset
        if not self.stage_names:
            raise UserError(f"system '{self.system}' has a single training stage; drop --stage")
        if stage not in self.stage_names:
            raise unknown_name(f"stage of '{self.system}'", stage, self.stage_names)
        return preset

    def preset(self, name: str) -> Preset:
        """Return the preset called ``name``; an unknown name lists the valid ones."""
        if name not in self.presets:
            raise unknown_name(f"preset for '{self.system}'", name, self.presets)
        return self.presets[name]

    def check_data(self, data: TrainingData) -> None:
        """Refuse data of tasks this recipe cannot train on, and an empty data list."""
        if not data.train:
            raise UserError(f"training '{self.system}' needs --data TASK=PATH (tasks: {', '.join(self.tasks)})")
        for task in [*data.train, *data.valid]:
            if task not in self.tasks:
                raise UserError(f"'{self.system}' cannot train on task '{task}'; valid tasks: {', '.join(self.tasks)}")

    def with_options(self, preset: Preset, options: Mapping[str, Any]) -> Preset:
        """Return ``preset`` changed by ``--set SYSTEM.NAME=VALUE`` options.

        The default validates them against ``switches`` and keeps them in ``preset.data`` (COMEDY's
        quirks); recipes with richer settings (SPT's model shape) override this.
        """
        if not options:
            return preset
        if not self.switches:
            raise UserError(f"'{self.system}' takes no --set {self.system}.NAME options (got {', '.join(sorted(options))})")
        chosen = {name: str(value) for name, value in options.items()}
        for name, value in chosen.items():
            if name not in self.switches:
                raise unknown_name(f"switch of '{self.system}'", name, self.switches)
            if value not in self.switches[name]:
                raise UserError(f"--set {self.system}.{name}: '{value}' is not one of {', '.join(self.switches[name])}")
        return replace(preset, data={**preset.data, **chosen})

    @abstractmethod
    def build(self, preset: Preset, data: TrainingData, *, seed: int, tokenizer_dir: Path | None = None,
              base: str | None = None) -> TrainingJob:
        """Return the job for ``preset`` on ``data``.

        ``tokenizer_dir`` (on --resume) holds the tokenizer saved by the interrupted run, which must be
        reused so token ids match the checkpoint; ``base`` overrides the preset's base checkpoint.
        """


def load_dialogues(task_name: str, path: Path) -> list[Dialogue]:
    """Return the dialogues in ``path`` read by task ``task_name``'s own loader."""
    from harness.plugins import TASKS

    return TASKS.get(task_name)().load(Path(path))


def split_head(items: Sequence[Any], fraction: float) -> tuple[list[Any], list[Any]]:
    """Return (first ``fraction`` of items, the rest), in order: the paper rule of an unshuffled split."""
    if fraction >= 1 or len(items) < 2:
        return list(items), []
    cut = min(max(int(len(items) * fraction), 1), len(items) - 1)
    return list(items[:cut]), list(items[cut:])
