"""SPT's settings as one frozen dataclass: model shape, loss weights and the released code's quirks.

Every quirk of the released code (systems.md section 2) is a named switch whose default is the behaviour the
paper intends; the released value is one ``--set spt.NAME=released`` away. The whole dataclass is
written to the checkpoint's ``adapter_config.json`` and reported by ``SPTSystem.info()`` (config.json).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from harness.errors import UserError

QUIRKS: dict[str, tuple[str, str, str]] = {
    "pooling": ("tokens", "released", "mean of E(x) over real tokens (paper) or over every padded position (released)"),
    "selector_input": ("prompt", "released", "selector sees the inference prompt only (paper) or the training input "
                                             "including the target (released)"),
    "contrastive_text": ("context", "persona", "contrastive BLEU labels from the context (paper figure) or from the "
                                               "persona (released code)"),
    "pad_eos_loss": ("keep", "released", "keep the final eos in the loss (paper) or drop it when pad = eos, as the "
                                         "released code does for Llama (ignore_index = pad)"),
    "prompt_init": ("normal", "vocab", "prompt tables ~ N(0, 1) like peft's RANDOM init (released) or copies of random "
                                       "vocabulary embeddings"),
}
"""name -> (default, alternative, what it decides)."""


@dataclass(frozen=True)
class SPTConfig:
    """Everything that shapes an SPT model and its objective (see the module docstring for quirks).

    ``selector=False`` with ``num_prompts=1`` is the paper's prompt-tuning (PT) baseline: one prompt,
    no normaliser, NLL only.
    """

    base: str
    base_revision: str | None = None
    num_prompts: int = 4
    num_virtual_tokens: int = 8
    selector: bool = True
    selection_weight: float = 0.4
    contrastive_weight: float = 0.4
    fusion_weight: float = 1.0
    tau_gold: float = 1.0
    tau_sim: float = 1.0
    contrastive_bleu_threshold: float = 20.0
    max_length: int = 512
    max_context_turns: int = -1
    max_new_tokens: int = 32
    pooling: str = "tokens"
    selector_input: str = "prompt"
    contrastive_text: str = "context"
    pad_eos_loss: str = "keep"
    prompt_init: str = "normal"

    def __post_init__(self) -> None:
        if self.num_prompts < 1:
            raise UserError(f"spt: num_prompts (K) must be at least 1, got {self.num_prompts}")
        if self.num_virtual_tokens < 1:
            raise UserError(f"spt: num_virtual_tokens must be at least 1, got {self.num_virtual_tokens}")
        if self.selector and self.num_prompts < 2:
            raise UserError("spt: a selector needs num_prompts >= 2; use selector=false for one prompt (the pt variant)")
        for name, (default, alternative, _) in QUIRKS.items():
            value = getattr(self, name)
            if value not in (default, alternative):
                raise UserError(f"spt.{name}: '{value}' is not one of {default}, {alternative}")
        if self.max_length < 8 or self.max_new_tokens < 1:
            raise UserError("spt: max_length must be >= 8 and max_new_tokens >= 1")

    def with_options(self, options: Mapping[str, Any]) -> "SPTConfig":
        """Return a copy with ``options`` applied; an unknown name lists the valid ones."""
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise UserError(f"spt: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        typed = {}
        for name, value in options.items():
            kind = type(getattr(self, name))
            if isinstance(getattr(self, name), bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif kind in (int, float) and not isinstance(value, bool):
                try:
                    value = kind(value)
                except (TypeError, ValueError):
                    raise UserError(f"spt.{name}: expected {kind.__name__}, got '{value}'") from None
            typed[name] = value
        return replace(self, **typed)

    def quirks(self) -> dict[str, str]:
        """Return the quirk switches and their values (recorded in config.json)."""
        return {name: getattr(self, name) for name in QUIRKS}

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> "SPTConfig":
        """Return the config stored in a checkpoint; unknown keys name the file."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown or "base" not in data:
            problem = f"unknown key(s) {', '.join(unknown)}" if unknown else "missing 'base'"
            raise UserError(f"{where}: spt: {problem}")
        return cls(**dict(data))
