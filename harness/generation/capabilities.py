"""What a loaded model can do, probed once: which forward arguments it takes, whether it is a peft
prompt-learning model, and whether its cache allows shared-prefix reuse. A leaf module, so the
model state, prefix sharing and batching all ask it without leaning on each other."""
from __future__ import annotations

import inspect
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


def forward_parameters(model: Any) -> set[str]:
    """Return the keyword names the model's forward accepts (through a peft wrapper)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(inner.forward).parameters)


def soft_prompted(model: Any) -> bool:
    """Return True for a peft prompt-learning model (prompt tuning, prefix tuning...).

    peft puts the virtual tokens before everything, padding included, and ignores position ids, so
    a left-padded row would see its prompt at shifted positions: such models run one row at a time.
    """
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def supports_prefix_cache(model: Any, pad_id: int) -> bool:
    """Return True when the model is a decoder whose cache is plain per-layer keys/values.

    Probed with a two-token forward (``ModelState.shares_prefixes`` asks once); sliding-window,
    linear-attention or encoder-decoder caches and prompt-tuning adapters take the plain
    ``generate`` path instead.
    """
    from transformers import DynamicCache

    needed = {"position_ids", "past_key_values", "logits_to_keep"}
    if getattr(model.config, "is_encoder_decoder", False) or soft_prompted(model) or not needed <= forward_parameters(model):
        return False
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([[pad_id, pad_id]], device=device), use_cache=True)
        cache = out.past_key_values
        return isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)
    except (TypeError, ValueError, RuntimeError, AttributeError):
        return False
