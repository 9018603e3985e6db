"""Mixed-prompt batched greedy generation and reference scoring for SPT (rows carry different prompts).

Each row is ``[padding][its selected prompt table][prompt tokens]`` as ``inputs_embeds`` with an
attention mask that is 0 on the padding, so transformers' ``generate`` counts positions from the
row's first real vector (the prompt table), exactly where training put it. Rows are sorted by
length before batching so padding stays small; outputs are returned in input order. (Written here
because the shared engine takes token prompts only; peft's prompt-tuning adapters generate one row
at a time because their virtual tokens sit before the padding.)
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from training.collate import IGNORE_INDEX


def left_padded_inputs(model: Any, rows: Sequence[Sequence[int]], choices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (inputs_embeds [B, n+W, d], attention_mask [B, n+W]) with each row's prompt after its padding."""
    device = model.prompts.device
    width = max(len(row) for row in rows)
    pads = torch.tensor([width - len(row) for row in rows], device=device)
    ids = torch.tensor([[model.pad_id] * (width - len(row)) + list(row) for row in rows], device=device)
    tokens = model.embed(ids)
    prefix = model.row_prefix(choices.to(device)).to(tokens.dtype)
    n = prefix.shape[1]
    source = torch.cat([prefix, tokens], dim=1)  # [prompt (n)][padded tokens (W)]
    position = torch.arange(n + width, device=device).unsqueeze(0)
    pad = pads.unsqueeze(1)
    index = torch.where(position < pad, n + position, torch.where(position < pad + n, position - pad, position))
    embeds = source.gather(1, index.unsqueeze(-1).expand(-1, -1, source.shape[-1]))
    return embeds, (position >= pad).long()


def greedy_generate(model: Any, rows: Sequence[Sequence[int]], choices: Sequence[int], *, max_new_tokens: int,
                    eos_ids: Sequence[int], batch_size: int = 16) -> list[list[int]]:
    """Return the greedy continuation token ids of each row (cut before the first end token)."""
    order = sorted(range(len(rows)), key=lambda i: (-len(rows[i]), i))
    out: list[list[int]] = [[] for _ in rows]
    ends = set(int(e) for e in eos_ids)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            embeds, mask = left_padded_inputs(model, [rows[i] for i in batch], torch.tensor([choices[i] for i in batch]))
            new = model.base.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                                      do_sample=False, num_beams=1, eos_token_id=list(ends), pad_token_id=model.pad_id)
            for i, ids in zip(batch, new.tolist()):
                cut = next((j for j, token in enumerate(ids) if token in ends), len(ids))
                out[i] = ids[:cut]
    return out


def reference_nll(model: Any, rows: Sequence[tuple[Sequence[int], Sequence[int]]], choices: Sequence[int],
                  batch_size: int = 16) -> list[tuple[float, int]]:
    """Return (summed NLL in nats, token count) of each (prompt ids, target ids) under its chosen prompt."""
    from training.collate import PaddingCollator

    out: list[tuple[float, int]] = []
    pad = PaddingCollator(pad_id=model.pad_id)
    device = model.prompts.device
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            batch = pad([{"input_ids": list(p) + list(t), "labels": [IGNORE_INDEX] * len(p) + list(t)} for p, t in chunk])
            batch = {key: value.to(device) for key, value in batch.items()}
            prefix = model.row_prefix(torch.tensor(choices[start:start + batch_size], device=device))
            hidden = model.hidden(prefix, batch["input_ids"], batch["attention_mask"])[:, prefix.shape[1]:]
            targets = batch["labels"][:, 1:]
            chosen = targets != IGNORE_INDEX
            logits = model.base.get_output_embeddings()(hidden[:, :-1][chosen]).float()
            losses = torch.nn.functional.cross_entropy(logits, targets[chosen], reduction="none")
            rows_of = torch.arange(len(chunk), device=device).unsqueeze(1).expand_as(targets)[chosen]
            sums = torch.zeros(len(chunk), device=device).index_add(0, rows_of, losses)
            counts = chosen.sum(dim=1)
            out += [(float(s), int(c)) for s, c in zip(sums.tolist(), counts.tolist())]
    return out
