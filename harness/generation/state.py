"""The loaded model as the engine's collaborators see it: one object with public attributes.

The ``Generator`` builds one ``ModelState`` when the model is first needed (a fully cached run never
builds one) and hands it to batching, prefix sharing and decoding, which read what they need from
it and add their counters to ``stats`` (the Generator's own counter, shared).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from harness.generation.config import TIE_MARGINS
from harness.generation.prefix import supports_prefix_cache
from harness.generation.prompts import PrefixTable


@dataclass
class ModelState:
    """Model, tokenizer and the facts about them that every batch needs."""

    model: Any
    tokenizer: Any
    stats: Counter[str] = field(default_factory=Counter)
    prefixes: PrefixTable = field(default_factory=PrefixTable)
    tie_margin_override: float | None = None

    @cached_property
    def seq2seq(self) -> bool:
        """True for encoder-decoder models (right padding, prompt not echoed)."""
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

    @cached_property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @cached_property
    def pad_id(self) -> int:
        """The padding id: the tokenizer's pad, else its eos (GPT-2 and SmolLM2 pad with eos)."""
        for value in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if value is not None:
                return int(value)
        return 0

    @cached_property
    def eos_ids(self) -> list[int]:
        """Ids that end a reply: the model's generation eos ids and the tokenizer's eos."""
        ids: list[int] = []
        generation_config = getattr(self.model, "generation_config", None)
        for value in (getattr(generation_config, "eos_token_id", None), self.tokenizer.eos_token_id):
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if item is not None and int(item) not in ids:
                    ids.append(int(item))
        return ids

    @cached_property
    def context_limit(self) -> int | None:
        """The model's maximum sequence length when its config states one."""
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(self.model.config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    @cached_property
    def tie_margin(self) -> float:
        """The near-tie threshold for the model's dtype (see ``harness.generation.engine``)."""
        if self.tie_margin_override is not None:
            return self.tie_margin_override
        dtype = str(getattr(self.model, "dtype", "float32")).replace("torch.", "")
        return TIE_MARGINS.get(dtype, 0.0)

    @cached_property
    def shares_prefixes(self) -> bool:
        """True when the model takes the prefix-sharing loop (probed once, ``prefix.supports_prefix_cache``)."""
        return not self.seq2seq and supports_prefix_cache(self.model, self.pad_id)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Return the input embeddings of ``ids`` (what the model adds positions to)."""
        return self.model.get_input_embeddings()(ids)
