"""Training the strategy model's adapter when only its top layers carry LoRA, frozen layers run once.

With the adapter in the last k layers (``lora_last_layers``, the tiny preset), everything below
them is frozen, so the states entering the first adapted layer never change during training: they
are computed once per example (and once for the shared task header), kept in memory, and every
epoch runs only the top k layers forward and backward. Same tokens, positions, attention and loss
as ``shared_header_loss`` (a unit test checks loss and gradients against it); on SmolLM2-135M with
k = 4 a step costs about a fifth of the full pass (benchmarks/magic.py), so the preset affords
several epochs over its sample instead of one. Hand-written because no library trains from cached
intermediate states; the layers themselves are transformers' own modules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from models.magic.shared_header import SharedHeaderCollator, make_shared_header_trainer
from training.collate import IGNORE_INDEX

ROW_KEY = "frozen_row"


def first_trainable_layer(model: Any) -> int:
    """Return the index of the lowest decoder layer holding a trainable parameter (0: none frozen)."""
    layers = _body(model).layers
    for index, layer in enumerate(layers):
        if any(param.requires_grad for param in layer.parameters()):
            return index
    return len(layers)


def _body(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()


def frozen_states(model: Any, header: Sequence[int], rows: Sequence[Mapping[str, Sequence[int]]], start: int,
                  batch_size: int = 16, progress: bool = True) -> tuple[Any, list[Any]]:
    """Return the states entering layer ``start`` of the header [1, H, D] and of each row [len, D].

    Rows run after the header's cache, in length-sorted batches, exactly as in training (right
    padding; a causal row never sees its padding).
    """
    import torch
    from tqdm.auto import tqdm

    body = _body(model)
    device = next(body.parameters()).device
    header_ids = torch.tensor([list(header)], device=device)
    states: list[Any] = [None] * len(rows)
    with torch.no_grad():
        out = body(input_ids=header_ids, use_cache=True, output_hidden_states=True)
        header_states, header_cache = out.hidden_states[start], out.past_key_values
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
        for begin in tqdm(range(0, len(order), batch_size), desc=f"frozen layers 0-{start - 1}", unit="batch",
                          disable=not progress):
            batch = order[begin:begin + batch_size]
            width = max(len(rows[i]["input_ids"]) for i in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long, device=device)
            mask = torch.zeros(len(batch), header_ids.shape[1] + width, dtype=torch.long, device=device)
            mask[:, :header_ids.shape[1]] = 1
            for slot, i in enumerate(batch):
                row = list(rows[i]["input_ids"])
                ids[slot, :len(row)] = torch.tensor(row, device=device)
                mask[slot, header_ids.shape[1]:header_ids.shape[1] + len(row)] = 1
            cache = _copy_cache(header_cache, len(batch))
            hidden = body(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True,
                          output_hidden_states=True).hidden_states[start]
            for slot, i in enumerate(batch):
                states[i] = hidden[slot, :len(rows[i]["input_ids"])].clone()
    return header_states, states


def _copy_cache(cache: Any, batch: int) -> Any:
    import copy

    repeated = copy.deepcopy(cache)
    repeated.batch_repeat_interleave(batch)
    return repeated


@dataclass
class FrozenStatesCollator(SharedHeaderCollator):
    """``SharedHeaderCollator`` plus the precomputed states: ``header_states`` [1, H, D] and
    ``row_states`` [B, T, D] (zero-padded on the right), looked up by each row's ``frozen_row`` id."""

    header_states: Any = None
    states: Sequence[Any] = field(default_factory=list)

    def __call__(self, batch: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, Any]:
        import torch

        ids = [int(row[ROW_KEY][0]) for row in batch]
        out = super().__call__([{k: v for k, v in row.items() if k != ROW_KEY} for row in batch])
        width = out["input_ids"].shape[1]
        first = self.states[ids[0]]
        padded = first.new_zeros(len(ids), width, first.shape[-1])
        for slot, index in enumerate(ids):
            padded[slot, :len(self.states[index])] = self.states[index]
        out["row_states"] = padded
        out["header_states"] = self.header_states
        return out


def top_layers_loss(model: Any, inputs: Mapping[str, Any], start: int) -> Any:
    """Return ``shared_header_loss`` computed from the states entering layer ``start``."""
    import torch
    from transformers import DynamicCache

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = base.get_decoder()
    header, rows = inputs["header_states"], inputs["row_states"]
    mask, labels = inputs["attention_mask"], inputs["labels"]
    batch, width, size = rows.shape[0], rows.shape[1], header.shape[1]
    low = torch.finfo(rows.dtype).min
    cache = DynamicCache(config=base.config)
    positions = torch.arange(size, device=rows.device)[None]
    header_mask = torch.full((size, size), low, dtype=rows.dtype, device=rows.device).triu(1)[None, None]
    embeddings = body.rotary_emb(header, positions)
    hidden = header
    for layer in body.layers[start:]:
        hidden = layer(hidden, attention_mask=header_mask, position_embeddings=embeddings, position_ids=positions,
                       past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(batch)
    positions = (size + torch.arange(width, device=rows.device))[None].expand(batch, width)
    allowed = torch.ones(width, width, dtype=torch.bool, device=rows.device).tril()[None] & mask.bool()[:, None, :]
    allowed = torch.cat([allowed.new_ones(batch, width, size), allowed], dim=2)
    row_mask = torch.zeros(allowed.shape, dtype=rows.dtype, device=rows.device).masked_fill(~allowed, low)[:, None]
    embeddings = body.rotary_emb(rows, positions)
    hidden = rows
    for layer in body.layers[start:]:
        hidden = layer(hidden, attention_mask=row_mask, position_embeddings=embeddings, position_ids=positions,
                       past_key_values=cache, use_cache=True)
    hidden = body.norm(hidden)
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = base.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def make_frozen_states_trainer(start: int) -> type:
    """Return a Trainer whose loss is ``top_layers_loss`` (training and evaluation)."""
    import torch
    from transformers import Trainer

    class FrozenStatesTrainer(Trainer):
        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
            loss = top_layers_loss(model, inputs, start)
            return (loss, {"loss": loss}) if return_outputs else loss

        def prediction_step(self, model: Any, inputs: Any, prediction_loss_only: bool, ignore_keys: Any = None) -> Any:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                loss = top_layers_loss(model, inputs, start)
            return loss.detach(), None, None

    return FrozenStatesTrainer


def with_frozen_states(model: Any, header: Sequence[int], train_rows: list[dict[str, Any]],
                       valid_rows: list[dict[str, Any]], pad_id: int, start: int) -> tuple[list, list, Any, type]:
    """Return (train rows, valid rows, collator, trainer class) training from the states entering
    layer ``start``; with nothing frozen (``start`` 0) the plain shared-header path is returned."""
    if start == 0:
        return train_rows, valid_rows, SharedHeaderCollator(pad_id=pad_id, header=tuple(header)), make_shared_header_trainer()
    rows = [*train_rows, *valid_rows]
    header_states, states = frozen_states(model, header, rows, start)
    tagged = [{**row, ROW_KEY: [index]} for index, row in enumerate(rows)]
    collator = FrozenStatesCollator(pad_id=pad_id, header=tuple(header), header_states=header_states, states=states)
    return tagged[:len(train_rows)], tagged[len(train_rows):], collator, make_frozen_states_trainer(start)
