"""The SPT module: K soft prompt tables and a shared normaliser on a frozen causal LM.

Why hand-written rather than K peft PromptTuning wrappers: peft runs one prompt per model call and
puts virtual tokens before left padding (so its adapters generate one row at a time); here all K
prompted copies of a batch are one K x B forward, and at inference every row carries its own
selected prompt after its padding, with positions counted from the first real position, so rows
whose prompts differ are generated in one batch. The LM head is applied only at target positions
(the K x B x L x V logits of the full sequence would dominate memory and time for nothing).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.errors import UserError, first_line
from models.spt.config import SPTConfig
from models.spt.losses import PromptedLogits, objective
from training.collate import IGNORE_INDEX


class SPTModel(nn.Module):
    """K prompt tables [K, n, d], a Linear(d, d) normaliser and the frozen base (never trained)."""

    def __init__(self, base: Any, config: SPTConfig, pad_id: int) -> None:
        super().__init__()
        self.base = base
        self.spt = config
        self.pad_id = int(pad_id)
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        embeddings = base.get_input_embeddings()
        dim = int(embeddings.embedding_dim)
        self.prompts = nn.Parameter(torch.empty(config.num_prompts, config.num_virtual_tokens, dim))
        self.normalizer = nn.Linear(dim, dim) if config.selector else None
        self.reset_prompts()

    # ---- parameters --------------------------------------------------------------------------------
    def reset_prompts(self, generator: torch.Generator | None = None) -> None:
        """Initialise the prompt tables as ``config.prompt_init`` says."""
        with torch.no_grad():
            if self.spt.prompt_init == "vocab":
                table = self.base.get_input_embeddings().weight
                picks = torch.randint(0, table.shape[0], (self.prompts.numel() // table.shape[1],), generator=generator)
                self.prompts.copy_(table[picks].float().reshape(self.prompts.shape))
            else:
                self.prompts.normal_(0.0, 1.0, generator=generator)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Return the trained tensors only (what a checkpoint stores)."""
        state = {"prompts": self.prompts.detach()}
        if self.normalizer is not None:
            state["normalizer.weight"] = self.normalizer.weight.detach()
            state["normalizer.bias"] = self.normalizer.bias.detach()
        return state

    @property
    def prompt_dim(self) -> int:
        return int(self.prompts.shape[-1])

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        """Let the Trainer switch on the base's gradient checkpointing (the paper trains with it on)."""
        self.base.gradient_checkpointing_enable(**kwargs)

    # ---- selection ---------------------------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Return the base's input embeddings of ``ids``."""
        return self.base.get_input_embeddings()(ids)

    def selection_scores(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return s [B, K] = softplus_beta10(cos(N(mean_v P_k), N(mean_t E(x_b)))).

        ``pooling=tokens`` averages E(x) over ``mask``; ``released`` over every column, padding included.
        """
        if self.normalizer is None:
            raise ValueError("this SPT model has no selector (pt variant)")
        embedded = self.embed(ids).float()
        if self.spt.pooling == "released":
            pooled = embedded.mean(dim=1)
        else:
            weights = mask.to(embedded.dtype).unsqueeze(-1)
            pooled = (embedded * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        prompt_means = self.normalizer(self.prompts.mean(dim=1))
        cosine = nn.functional.cosine_similarity(self.normalizer(pooled).unsqueeze(1), prompt_means.unsqueeze(0), dim=-1)
        return nn.functional.softplus(cosine, beta=10.0, threshold=1.0)

    def select(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the argmax prompt index [B] (always 0 without a selector)."""
        if self.normalizer is None:
            return torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)
        return self.selection_scores(ids, mask).argmax(dim=-1)

    # ---- forward passes ----------------------------------------------------------------------------
    def hidden(self, prefix: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the base's last hidden states [R, n+L, d] for rows ``prefix`` [R, n, d] + tokens ``ids``.

        Rows are right padded (training): default positions then count from the prompt's first vector.
        """
        embedded = self.embed(ids)
        inputs = torch.cat([prefix.to(embedded.dtype), embedded], dim=1)
        full_mask = torch.cat([torch.ones(prefix.shape[:2], dtype=mask.dtype, device=mask.device), mask], dim=1)
        return self.base.base_model(inputs_embeds=inputs, attention_mask=full_mask).last_hidden_state

    def prompted_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                        selector_ids: torch.Tensor | None = None,
                        selector_mask: torch.Tensor | None = None) -> PromptedLogits:
        """Run all K prompts on the batch as one K x B forward (k-major rows, index k*B + b)."""
        k, n = self.prompts.shape[:2]
        batch, length = input_ids.shape
        prefix = self.prompts.unsqueeze(1).expand(k, batch, n, self.prompt_dim).reshape(k * batch, n, self.prompt_dim)
        hidden = self.hidden(prefix, input_ids.repeat(k, 1), attention_mask.repeat(k, 1))
        hidden = hidden[:, n:].reshape(k, batch, length, -1)
        targets = labels[:, 1:]
        chosen = targets != IGNORE_INDEX
        logits = self.base.get_output_embeddings()(hidden[:, :, :-1][:, chosen]).float()
        rows = torch.arange(batch, device=labels.device).unsqueeze(1).expand_as(targets)[chosen]
        scores = None
        if self.normalizer is not None:
            ids = selector_ids if selector_ids is not None else input_ids
            mask = selector_mask if selector_mask is not None else attention_mask
            scores = self.selection_scores(ids, mask)
        return PromptedLogits(logits, targets[chosen], rows, scores, batch)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                selector_ids: torch.Tensor | None = None, selector_mask: torch.Tensor | None = None,
                pair_targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Return the SPT objective and its parts (``loss`` is what the Trainer optimises)."""
        out = self.prompted_logits(input_ids, attention_mask, labels, selector_ids, selector_mask)
        return objective(out, pair_targets, self.spt)

    def row_prefix(self, choice: torch.Tensor) -> torch.Tensor:
        """Return each row's selected prompt table [B, n, d]."""
        return self.prompts[choice]

    # ---- saving --------------------------------------------------------------------------------------
    tokenizer: Any = None
    """Set by the recipe so ``save_pretrained`` can write a random-init base loadable on its own."""

    def save_pretrained(self, directory: str) -> None:
        """Write the dialbench SPT checkpoint (what ``dialbench train --max-steps 0`` calls)."""
        from models.spt.checkpoint import save

        save(self, self.tokenizer, directory)


def load_spt(directory: str | Path, *, dtype: str = "float32", device: str = "cpu", base: str | None = None) -> tuple[Any, Any]:
    """Return (SPTModel, tokenizer) from a dialbench checkpoint; ``base`` remaps the recorded base."""
    from safetensors.torch import load_file

    from harness.checkpoints.loader import load_model
    from models.spt.checkpoint import WEIGHTS, apply_tensors, read_config, resolve_base

    directory = Path(directory)
    config = read_config(directory)
    if base:
        config = config.with_options({"base": base})
    loaded = load_model(resolve_base(directory, config.base), dtype=dtype, device=device)
    if loaded.kind != "causal":
        raise UserError(f"{config.base}: SPT needs a causal LM base, got a {loaded.kind} model")
    tokenizer = loaded.tokenizer
    if (directory / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(directory))
    try:
        tensors = load_file(str(directory / WEIGHTS))
    except Exception as err:  # safetensors raises its own error type
        raise UserError(f"{directory / WEIGHTS}: corrupt safetensors file ({first_line(err)})") from None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = SPTModel(loaded.model, config, pad)
    apply_tensors(model, tensors, str(directory / WEIGHTS))
    return model.to(device).eval(), tokenizer
