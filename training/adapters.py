"""Parameter-efficient fine-tuning through peft: LoRA (SiliconFriend, MAGIC's strategy model) and
prompt tuning (SPT's soft prompts).

Adapters are saved apart from the base model, as peft does, so a trained adapter directory plus its
base is all ``dialbench eval --model DIR`` needs; the engine saves a randomly initialised base next
to the adapter (``DIR/base``) because such a base exists nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import UserError

KINDS = ("lora", "prompt_tuning")


@dataclass(frozen=True)
class AdapterSpec:
    """Which adapter to train. LoRA fields follow peft's LoraConfig, prompt fields its PromptTuningConfig.

    Defaults are the common r=8 LoRA on the attention projections (q/k/v/o of Llama-style models).
    """

    kind: str = "lora"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    num_virtual_tokens: int = 8
    task_type: str = "CAUSAL_LM"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"unknown adapter kind '{self.kind}'; valid choices: {', '.join(KINDS)}")


def apply_adapter(model: Any, spec: AdapterSpec, layers: list[int] | None = None) -> Any:
    """Return ``model`` wrapped by peft so only the adapter's parameters train.

    ``layers`` limits LoRA to those layer indices (peft's ``layers_to_transform``): the backward pass
    then stops at the lowest adapted layer, which is what makes CPU presets affordable.
    """
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, get_peft_model

    if spec.kind == "lora":
        config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                            target_modules=list(spec.target_modules), task_type=spec.task_type,
                            layers_to_transform=layers)
    else:
        config = PromptTuningConfig(task_type=spec.task_type, num_virtual_tokens=spec.num_virtual_tokens,
                                    prompt_tuning_init=PromptTuningInit.RANDOM)
    return get_peft_model(model, config)


def is_adapter(model: Any) -> bool:
    """Return True for a peft-wrapped model (saved as an adapter directory)."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a core dependency
        return False
    return isinstance(model, PeftModel)


def load_adapter_model(directory: str, *, dtype: Any = None, trainable: bool = False) -> Any:
    """Return the base model with the adapter in ``directory`` attached (for evaluation or resume)."""
    from peft import AutoPeftModelForCausalLM

    return AutoPeftModelForCausalLM.from_pretrained(directory, dtype=dtype, is_trainable=trainable)
