"""MAGIC's response model: BART encoder-decoder whose decoder also attends to a strategy-memory vector.

Module names mirror the released ``DialogueModel`` (systems.md section 9.2) so that its
``dialogue_model.pth`` loads with a strict ``load_state_dict``: ``encoder`` (dialogue BartEncoder),
``strategy_encoder`` (a second BartEncoder), ``memory_enhance_module.multihead_attn``,
``decoder`` (BartDecoder), ``generator.proj`` (untied, with bias, no final_logits_bias) and
``strategy_cls.classifier``. The banks (``bank.py``) are not parameters and not in the state dict;
``save_pretrained`` writes them beside the weights.

Encoder side (``encode``): context states, then one memory vector per row (the memory-enhance
attention of the context over the bank of the row's strategy, max-pooled over the context), then,
with ``motivation=encoded`` (the paper's intent; the released code encodes it and never uses it),
the motivation's encoder states. A row with strategy id -1 (``strategy=none``) gets its memory
position masked out. The decoder's cross-attention mask travels in ``MagicEncoderOutput.memory_mask``
so that transformers' ``generate`` (which expands encoder outputs per beam) needs no help.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BartConfig, GenerationMixin
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.bart.modeling_bart import BartDecoder, BartEncoder, BartPreTrainedModel, shift_tokens_right

from models.magic.bank import StrategyBank
from models.magic.strategies import N_STRATEGIES

MOTIVATION_MODES = ("unused", "encoded")
IGNORE_INDEX = -100


class MagicConfig(BartConfig):
    """BartConfig plus MAGIC's memory settings (``strategy_loss_weight`` 0.2, banks of 128)."""

    model_type = "magic_bart"

    def __init__(self, n_strategies: int = N_STRATEGIES, bank_capacity: int = 128, strategy_loss_weight: float = 0.2,
                 motivation: str = "unused", memory_length: int = 64, **kwargs: Any) -> None:
        kwargs.setdefault("tie_word_embeddings", False)
        kwargs.setdefault("is_encoder_decoder", True)
        super().__init__(**kwargs)
        self.n_strategies = n_strategies
        self.bank_capacity = bank_capacity
        self.strategy_loss_weight = strategy_loss_weight
        self.motivation = motivation
        self.memory_length = memory_length


@dataclass
class MagicEncoderOutput(BaseModelOutput):
    """Encoder states with the memory (and motivation) positions appended, and their mask."""

    memory_mask: torch.Tensor | None = None


class MemoryEnhanceModule(nn.Module):
    """Attention of the context states (queries) over a strategy bank (keys/values), max-pooled."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, context: torch.Tensor, context_mask: torch.Tensor, memory: torch.Tensor,
                memory_padding: torch.Tensor) -> torch.Tensor:
        """Return one vector per row; rows whose bank is empty get zeros instead of NaN.

        The released code lets an all-masked row through, which softmaxes over no keys; here such a
        row attends to one zero key and its result is then replaced by zeros. Pooling skips the
        context's padding positions (the released MaxPool spans all 512 positions).
        """
        empty = memory_padding.all(dim=1)
        padding = memory_padding.clone()
        padding[:, 0] &= ~empty
        attended, _ = self.multihead_attn(context, memory, memory, key_padding_mask=padding, need_weights=False)
        attended = attended.masked_fill(~context_mask.bool().unsqueeze(-1), torch.finfo(attended.dtype).min)
        pooled = attended.max(dim=1).values
        return torch.where(empty.unsqueeze(-1), torch.zeros_like(pooled), pooled)


class Generator(nn.Module):
    """The untied output projection (``generator.proj`` in the released state dict)."""

    def __init__(self, dim: int, vocab: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, vocab)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden)


class StrategyClassifier(nn.Module):
    """Linear(d -> 8) over each pooled memory vector: the auxiliary strategy loss."""

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, classes)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)


class _EncoderView:
    """What ``generate`` calls as the encoder: ``MagicResponseModel.encode`` (a plain object, so the
    model does not register itself as its own sub-module)."""

    main_input_name = "input_ids"

    def __init__(self, model: "MagicResponseModel") -> None:
        self._model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> MagicEncoderOutput:
        return self._model.encode(input_ids, attention_mask, kwargs.get("strategy_ids"),
                                  kwargs.get("motivation_ids"), kwargs.get("motivation_mask"))

    __call__ = forward

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model.encoder, name)


class MagicResponseModel(BartPreTrainedModel, GenerationMixin):
    """See the module docstring. ``self.bank`` holds the 8 strategy banks."""

    config_class = MagicConfig
    base_model_prefix = "magic"
    main_input_name = "input_ids"

    def __init__(self, config: MagicConfig) -> None:
        super().__init__(config)
        self.encoder = BartEncoder(config)
        self.strategy_encoder = BartEncoder(config)
        self.memory_enhance_module = MemoryEnhanceModule(config.d_model, config.encoder_attention_heads)
        self.decoder = BartDecoder(config)
        self.generator = Generator(config.d_model, config.vocab_size)
        self.strategy_cls = StrategyClassifier(config.d_model, config.n_strategies)
        self.bank = StrategyBank(config.n_strategies, config.d_model, config.bank_capacity)
        self.post_init()

    # --- plumbing transformers expects ------------------------------------------------------------
    def get_encoder(self) -> Any:
        return _EncoderView(self)

    def get_decoder(self) -> BartDecoder:
        return self.decoder

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.embed_tokens

    def get_output_embeddings(self) -> nn.Module:
        return self.generator.proj

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "MagicResponseModel":
        """Move the banks with the parameters (``.to``/``.cuda``/``.half``)."""
        result = super()._apply(fn, *args, **kwargs)
        if hasattr(self, "bank"):
            self.bank.banks = [fn(bank) for bank in self.bank.banks]
        return result

    # --- the encoder side -----------------------------------------------------------------------------
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, strategy_ids: torch.Tensor | None,
               motivation_ids: torch.Tensor | None = None, motivation_mask: torch.Tensor | None = None,
               banks: list[torch.Tensor] | None = None) -> MagicEncoderOutput:
        """Return the decoder memory: context states (+ memory vector) (+ motivation states)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        context = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        states, masks = [context], [attention_mask.long()]
        if strategy_ids is not None:
            memory, padding = self.bank.select(strategy_ids.clamp(min=0), banks)
            vector = self.memory_enhance_module(context, attention_mask, memory.to(context.dtype), padding)
            states.append(vector.unsqueeze(1))
            masks.append((strategy_ids >= 0).long().unsqueeze(1))
        if self.config.motivation == "encoded" and motivation_ids is not None:
            mask = motivation_mask if motivation_mask is not None else torch.ones_like(motivation_ids)
            states.append(self.encoder(input_ids=motivation_ids, attention_mask=mask).last_hidden_state)
            masks.append(mask.long())
        return MagicEncoderOutput(last_hidden_state=torch.cat(states, dim=1), memory_mask=torch.cat(masks, dim=1))

    def pool_memories(self, memory_ids: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """Return one vector per memory response: its strategy-encoder states max-pooled over all
        positions, padding included (as released)."""
        return self.strategy_encoder(input_ids=memory_ids, attention_mask=memory_mask).last_hidden_state.max(dim=1).values

    # --- forward ----------------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None, decoder_attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, strategy_ids: torch.Tensor | None = None,
                motivation_ids: torch.Tensor | None = None, motivation_mask: torch.Tensor | None = None,
                memory_ids: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                memory_strategy: torch.Tensor | None = None, encoder_outputs: Any = None,
                past_key_values: Any = None, use_cache: bool | None = None, **kwargs: Any) -> Seq2SeqLMOutput:
        """Return logits (and, with labels, CE + 0.2 x strategy CE); in training mode the banks grow."""
        banks = None
        strategy_loss = None
        if self.training and memory_ids is not None and memory_ids.shape[0] > 0:
            pooled = self.pool_memories(memory_ids, memory_mask)
            banks = self.bank.append(pooled, memory_strategy)
            strategy_loss = nn.functional.cross_entropy(self.strategy_cls(pooled), memory_strategy)
        if encoder_outputs is None:
            encoder_outputs = self.encode(input_ids, attention_mask, strategy_ids, motivation_ids, motivation_mask, banks)
        states = encoder_outputs.last_hidden_state if hasattr(encoder_outputs, "last_hidden_state") else encoder_outputs[0]
        cross_mask = getattr(encoder_outputs, "memory_mask", None)
        if cross_mask is None:
            cross_mask = attention_mask
            if cross_mask is not None and cross_mask.shape[1] < states.shape[1]:
                extra = torch.ones(cross_mask.shape[0], states.shape[1] - cross_mask.shape[1], dtype=cross_mask.dtype,
                                   device=cross_mask.device)
                cross_mask = torch.cat([cross_mask, extra], dim=1)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)
        decoded = self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                               encoder_hidden_states=states, encoder_attention_mask=cross_mask,
                               past_key_values=past_key_values, use_cache=use_cache)
        logits = self.generator(decoded.last_hidden_state)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                               ignore_index=IGNORE_INDEX)
            if strategy_loss is not None:
                loss = loss + self.config.strategy_loss_weight * strategy_loss
        return Seq2SeqLMOutput(loss=loss, logits=logits, past_key_values=decoded.past_key_values,
                               encoder_last_hidden_state=states)

    # --- persistence --------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | Path, *args: Any, **kwargs: Any) -> Any:
        """Save weights and config as transformers does, and the banks beside them."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        self.bank.save(Path(save_directory))
        return result

    @classmethod
    def from_pretrained(cls, path: str | Path, *args: Any, **kwargs: Any) -> "MagicResponseModel":
        """Load weights (safetensors) and the banks; a folder without banks is a UserError."""
        model = super().from_pretrained(path, *args, **kwargs)
        model.bank.load(Path(path))
        device = next(model.parameters()).device
        model.bank.to(device)
        return model
