"""MAGIC's encoder side as a shared-engine ``EncoderHook``: context states + memory vector (+ motivation).

Each row's ``TokenPrompt.encoder_extra`` is ``{"strategy": id or -1, "motivation": [ids] or None}``;
the hook pads the motivations, calls ``MagicResponseModel.encode`` and returns its states with the
matching cross-attention mask, so the engine's batched beam search, scoring and cache handle MAGIC
like any encoder-decoder. Rows are independent (the bank padding is masked), as the engine needs.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch


class StrategyMemoryHook:
    """See the module docstring; ``key`` names the model weights and banks it reads."""

    def __init__(self, weights_key: str, pad_id: int) -> None:
        self.key = f"magic-memory/v1:{weights_key}"
        self.pad_id = pad_id

    def tensors(self, extras: Sequence[Any], device: torch.device) -> dict[str, torch.Tensor | None]:
        """Return strategy ids and right-padded motivation ids/mask for ``extras``."""
        strategy = torch.tensor([int((extra or {}).get("strategy", -1)) for extra in extras], device=device)
        motivations = [(extra or {}).get("motivation") for extra in extras]
        if all(m is None for m in motivations):
            return {"strategy_ids": strategy, "motivation_ids": None, "motivation_mask": None}
        rows = [list(m or [self.pad_id]) for m in motivations]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [self.pad_id] * (width - len(r)) for r in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        return {"strategy_ids": strategy, "motivation_ids": ids, "motivation_mask": mask}

    def encode(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               extras: Sequence[Any]) -> tuple[Any, torch.Tensor]:
        """Return (MagicEncoderOutput, its cross-attention mask)."""
        inputs = self.tensors(extras, input_ids.device)
        encoded = model.encode(input_ids, attention_mask, inputs["strategy_ids"], inputs["motivation_ids"],
                               inputs["motivation_mask"])
        return encoded, encoded.memory_mask
