"""The released beam search: probability summing, fixed length, batched, and its KV-cache reordering."""
from __future__ import annotations

import torch

from models.magic.decoding import model_next_logits, probability_summing_beam_search
from tests.models.magic_helpers import bart_tokenizer, fill_banks, tiny_magic


def released_reference(transitions: torch.Tensor, start: int, beams: int, steps: int) -> list[int]:
    """The released per-example loop: top-k per beam, summed softmax probabilities, best k of k x k."""
    hyps = [([start], 0.0)]
    for _ in range(steps):
        candidates = []
        for seq, score in hyps:
            probs = transitions[seq[-1]].softmax(-1)
            top = probs.topk(beams)
            candidates += [(seq + [int(t)], score + float(p)) for p, t in zip(top.values, top.indices)]
        hyps = sorted(candidates, key=lambda c: -c[1])[:beams]
    return max(hyps, key=lambda h: h[1])[0][1:]


def markov(transitions: torch.Tensor):
    """Return next_logits for a model whose next token depends only on the last one."""
    def step(sequences, parents):
        return transitions[sequences[:, -1]]
    return step


def test_matches_the_released_loop_on_random_markov_models():
    beams, steps = 3, 6
    tables = [torch.randn(12, 12, generator=torch.Generator().manual_seed(seed)) * 3 for seed in range(4)]

    def per_row(sequences, parents):  # row r of the batch follows table r
        rows = torch.arange(sequences.shape[0]) // beams
        return torch.stack([tables[int(r)][int(t)] for r, t in zip(rows, sequences[:, -1])])

    batched = probability_summing_beam_search(per_row, len(tables), 0, num_beams=beams, steps=steps)
    assert batched.shape == (len(tables), steps)
    for row, table in enumerate(tables):
        assert batched[row].tolist() == released_reference(table, 0, beams, steps)


def test_summing_probabilities_is_not_summing_log_probabilities():
    # start -> 1 (p .7) then a flat step (best .22); start -> 2 (p .3) then a confident step (.55)
    probs = torch.tensor([[1e-4, 0.7, 0.3 - 3e-4, 1e-4, 1e-4],
                          [0.19, 0.2, 0.21, 0.18, 0.22],
                          [0.55, 0.1125, 0.1125, 0.1125, 0.1125],
                          [0.2] * 5, [0.2] * 5])
    table = probs.log()
    exhaustive = probability_summing_beam_search(markov(table), 1, 0, num_beams=5, steps=2)[0].tolist()
    assert exhaustive == [1, 4]  # summed probabilities: .7 + .22 = .92 > .3 + .55 = .85
    assert 0.3 * 0.55 > 0.7 * 0.22  # while the log-prob (product) score prefers the path through 2
    assert exhaustive == released_reference(table, 0, 5, 2)


def test_always_runs_every_step_past_eos():
    eos_heavy = torch.tensor([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [5.0, 0.0, 0.0]])  # token 0 plays eos
    out = probability_summing_beam_search(markov(eos_heavy), 2, 1, num_beams=2, steps=7)
    assert out.shape == (2, 7) and out[0].tolist() == [0] * 7


def test_kv_cache_reordering_matches_recomputing_every_step():
    tokenizer = bart_tokenizer()
    model = tiny_magic(tokenizer)
    fill_banks(model)
    ids = torch.tensor([[tokenizer.bos_token_id, 5, 6, 7, tokenizer.eos_token_id], [tokenizer.bos_token_id, 9, 8, tokenizer.eos_token_id, tokenizer.pad_token_id]])
    mask = (torch.arange(5)[None] < torch.tensor([[5], [4]])).long()
    with torch.no_grad():
        encoded = model.encode(ids, mask, torch.tensor([2, 1]))
        cached = probability_summing_beam_search(model_next_logits(model, encoded, encoded.memory_mask, 3), 2,
                                                 tokenizer.bos_token_id, num_beams=3, steps=8)
        states = encoded.last_hidden_state.repeat_interleave(3, 0)
        cross = encoded.memory_mask.repeat_interleave(3, 0)

        def recompute(sequences, parents):
            from transformers.modeling_outputs import BaseModelOutput
            return model(decoder_input_ids=sequences, encoder_outputs=BaseModelOutput(last_hidden_state=states),
                         attention_mask=cross, use_cache=False).logits[:, -1]

        plain = probability_summing_beam_search(recompute, 2, tokenizer.bos_token_id, num_beams=3, steps=8)
    assert torch.equal(cached, plain)
