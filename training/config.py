"""Training hyperparameters as frozen values, and presets that bundle them with a model choice.

One ``TrainConfig`` describes an optimisation run independently of the engine that executes it; the
engine (``training/engine.py``) turns it into Hugging Face ``TrainingArguments`` (or TRL's
``DPOConfig``), so the published recipes are written once, as data, in each system's recipe module.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from harness.errors import UserError

SCHEDULES = ("linear", "cosine", "polynomial", "constant", "constant_with_warmup")
"""Names accepted by transformers' ``get_scheduler`` that the recipes use."""
METHODS = ("sft", "seq2seq", "dpo")
"""sft: causal LM with masked labels; seq2seq: encoder-decoder; dpo: preference optimisation (TRL)."""
SAMPLINGS = ("random", "group_by_length")
"""Training samplers (transformers' ``train_sampling_strategy``)."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run; ``None`` means "off" (no clipping, no early stopping).

    ``eval_steps=None`` evaluates (and saves) once per epoch, as most paper recipes do;
    ``warmup`` is a step count when >= 1 and a fraction of all steps when < 1 (transformers' rule).
    """

    learning_rate: float
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    schedule: str = "linear"
    schedule_power: float = 1.0
    warmup: float = 0.0
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float | None = None
    eval_steps: int | None = None
    early_stopping_patience: int | None = None
    save_total_limit: int = 2
    logging_steps: int = 10
    seed: int = 0
    bf16: bool = True
    """Use bf16 where the GPU supports it; CPU runs always stay in fp32."""
    gradient_checkpointing: bool = False
    method: str = "sft"
    dpo_beta: float = 0.1
    dpo_sft_weight: float = 0.0
    """Weight of an added SFT (NLL on the chosen answer) term in DPO, as COMEDY's ``--add_sft``."""
    max_length: int | None = None
    train_sampling: str = "random"
    """``group_by_length`` batches examples of similar length (transformers' LengthGroupedSampler):
    with dynamic padding, a batch of short replies no longer pads to one long one (SiliconFriend's
    tiny ESConv pairs: 40,176 -> about 23,000 tokens a epoch for 22,998 real ones)."""
    cpu_threads: int | None = None
    """torch threads while training on CPU (None: torch's default). Tiny presets use 1: layers of
    128 dims gain little from a second thread, and when other work shares the CPU an OpenMP thread
    that has to wait stalls every step (measured 0.06 s/step free vs 1.8 s/step contended on 2
    threads; 0.10 s/step either way on 1)."""

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule '{self.schedule}'; valid choices: {', '.join(SCHEDULES)}")
        if self.method not in METHODS:
            raise UserError(f"unknown training method '{self.method}'; valid choices: {', '.join(METHODS)}")
        if self.train_sampling not in SAMPLINGS:
            raise UserError(f"unknown train_sampling '{self.train_sampling}'; valid choices: {', '.join(SAMPLINGS)}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise UserError("batch_size and grad_accum must be at least 1")

    def with_overrides(self, **changes: Any) -> "TrainConfig":
        """Return a copy with ``changes`` applied (unknown names are a UserError, not silently kept)."""
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            valid = ", ".join(sorted(self.__dataclass_fields__))
            raise UserError(f"unknown training setting(s) {', '.join(unknown)}; valid: {valid}")
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (recorded next to the checkpoint)."""
        return asdict(self)


@dataclass(frozen=True)
class Preset:
    """A named recipe variant: the training hyperparameters plus recipe-specific model/data choices.

    ``model`` says what to start from (a base checkpoint name, or a small architecture to initialise
    randomly); ``data`` holds data-shaping choices (window sizes, the valid split). Each recipe
    documents the keys it reads.
    """

    name: str
    description: str
    train: TrainConfig
    model: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "name": self.name,
            "description": self.description,
            "train": self.train.to_json(),
            "model": dict(self.model),
            "data": dict(self.data),
        }
