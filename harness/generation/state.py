"""The loaded model as the engine's collaborators see it: one object with public attributes.

The ``Generator`` builds one ``ModelState`` when the model is first needed (a fully cached run never
builds one) and hands it to batching, prefix sharing and decoding, which read what they need from
it and add their counters to ``stats`` (the Generator's own counter, shared).
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import torch

from harness.generation.config import TIE_MARGINS
from harness.generation.capabilities import supports_prefix_cache
from harness.errors import UserError


class PrefixTable:
    """Named soft-prompt embeddings ([virtual tokens, hidden]) that ``TokenPrompt.prefix`` refers to."""

    def __init__(self) -> None:
        self._tables: dict[str, torch.Tensor] = {}
        self._hashes: dict[str, str] = {}

    def register(self, name: str, embeddings: torch.Tensor) -> str:
        """Store ``embeddings`` under ``name`` and return their content hash (part of cache keys)."""
        if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2 or embeddings.shape[0] < 1:
            raise UserError(f"prefix '{name}': expected a [virtual tokens, hidden] tensor")
        table = embeddings.detach().to("cpu").contiguous()
        digest = hashlib.sha256(f"{tuple(table.shape)}|{table.dtype}|".encode())
        digest.update(table.view(torch.uint8).numpy().tobytes())
        self._tables[name], self._hashes[name] = table, digest.hexdigest()
        return self._hashes[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tables

    def table(self, name: str) -> torch.Tensor:
        return self._tables[self._known(name)]

    def digest(self, name: str) -> str:
        return self._hashes[self._known(name)]

    def _known(self, name: str) -> str:
        if name not in self._tables:
            raise UserError(f"token prompt: prefix '{name}' is not registered (Generator.register_prefix)")
        return name


@dataclass
class ModelState:
    """Model, tokenizer and the facts about them that every batch needs."""

    model: Any
    tokenizer: Any
    stats: Counter[str] = field(default_factory=Counter)
    prefixes: PrefixTable = field(default_factory=PrefixTable)
    tie_margin_override: float | None = None
    # Set by the engine around each planned batch: called after every decoding step with how many of
    # the batch's rows are done, counting a running row as steps/max_new_tokens (so the bar moves
    # while a batch decodes instead of jumping when it ends).
    on_step: Callable[[float], None] | None = None

    def report_step(self, finished: int, running: int, step: int, max_new_tokens: int) -> None:
        """Tell the progress callback how far the current batch is (see ``on_step``)."""
        if self.on_step is not None and max_new_tokens > 0:
            self.on_step(finished + running * min(step, max_new_tokens) / max_new_tokens)

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
