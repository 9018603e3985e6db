"""Decoding: the paper's intended beam search (transformers ``generate``) and the released one.

``standard`` (default): beam 5, at most 64 new tokens, stop at eos, length penalty 1.0, through
transformers' beam search (diversity penalty 1.0 from the README would need beam groups, which the
released code never used: not applied).

``released`` (``test_evaluation.py``, systems.md section 6.5): hand-written because no library
scores beams by *summed softmax probabilities*. Every step each beam's cumulative score grows by
the probability (not log-probability) of its next token, the best ``num_beams`` of all beam x
vocabulary extensions survive, exactly ``steps`` (64) steps run with no eos stop, and the best
beam is returned without its start token (decoded with ``skip_special_tokens``, so text after an
eos is kept). Taking the top ``num_beams`` over beam x vocabulary equals the released top-k per
beam followed by top-k over the k x k candidates, since adding a beam's constant score keeps the
order inside that beam. One batched implementation serves any number of rows.
"""
from __future__ import annotations

from typing import Callable

import torch

DECODINGS = ("standard", "released")

NextLogits = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
"""``next_logits(sequences [rows*beams, t], parents)`` -> logits [rows*beams, vocab] of the next token;
``parents`` (None on the first call) gives, for each current flat row, the flat row it extends, so a
caller holding a KV cache can reorder it."""


def probability_summing_beam_search(next_logits: NextLogits, rows: int, start_id: int, *, num_beams: int = 5,
                                    steps: int = 64, device: torch.device | str = "cpu") -> torch.Tensor:
    """Return [rows, steps] token ids: the best beam of the released probability-summing search."""
    sequences = torch.full((rows * num_beams, 1), start_id, dtype=torch.long, device=device)
    scores = torch.full((rows, num_beams), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live beam per row at the start, as the released loop begins with one
    parents = None
    offsets = (torch.arange(rows, device=device) * num_beams).unsqueeze(1)
    for _ in range(steps):
        probs = next_logits(sequences, parents).float().softmax(dim=-1)
        vocab = probs.shape[-1]
        total = (scores.unsqueeze(-1) + probs.view(rows, num_beams, vocab)).view(rows, num_beams * vocab)
        scores, flat = total.topk(num_beams, dim=-1)
        beam, token = flat // vocab, flat % vocab
        parents = (beam + offsets).view(-1)
        sequences = torch.cat([sequences[parents], token.view(-1, 1)], dim=1)
    best = scores.argmax(dim=-1) + offsets.squeeze(1)
    return sequences[best, 1:]


def model_next_logits(model: torch.nn.Module, encoder_outputs: object, cross_mask: torch.Tensor,
                      num_beams: int) -> NextLogits:
    """Return a ``next_logits`` over MAGIC's decoder with a KV cache reordered along the beams."""
    from transformers.modeling_outputs import BaseModelOutput

    states = encoder_outputs.last_hidden_state.repeat_interleave(num_beams, dim=0)  # type: ignore[attr-defined]
    mask = cross_mask.repeat_interleave(num_beams, dim=0)
    expanded = BaseModelOutput(last_hidden_state=states)
    cache: dict[str, object] = {}

    def step(sequences: torch.Tensor, parents: torch.Tensor | None) -> torch.Tensor:
        past = cache.get("past")
        if past is not None and parents is not None:
            past.reorder_cache(parents)  # type: ignore[attr-defined]
        inputs = sequences if past is None else sequences[:, -1:]
        out = model(decoder_input_ids=inputs, encoder_outputs=expanded, attention_mask=mask,
                    past_key_values=past, use_cache=True)
        cache["past"] = out.past_key_values
        return out.logits[:, -1]

    return step
