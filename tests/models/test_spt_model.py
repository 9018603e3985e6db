"""SPT module: selection score against a direct computation, the K x B forward against K separate calls,
and mixed-prompt batched generation against one row at a time."""
from __future__ import annotations

import math

import pytest
import torch

from harness.generation import GenerationConfig, TokenPrompt
from models.spt.system import engine_for, prefix_name
from spt_helpers import tiny_spt, tiny_tokenizer

torch.set_num_threads(1)
IDS = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0], [13, 14, 15, 16, 0]])
MASK = (torch.arange(5) < torch.tensor([5, 3, 4]).unsqueeze(1)).long()


def direct_scores(model, ids, mask, over_padding: bool) -> list[list[float]]:
    """s_{b,k} = softplus_{beta=10, threshold=1}(cos(N(mean P_k), N(mean E(x_b)))) one number at a time."""
    table = model.base.get_input_embeddings().weight
    weight, bias = model.normalizer.weight.detach(), model.normalizer.bias.detach()
    out = []
    for b in range(ids.shape[0]):
        positions = range(ids.shape[1]) if over_padding else [t for t in range(ids.shape[1]) if mask[b, t]]
        x = sum(table[ids[b, t]] for t in positions) / len(positions)
        row = []
        for k in range(model.prompts.shape[0]):
            p = model.prompts[k].detach().mean(0)
            u, v = weight @ p + bias, weight @ x + bias
            cos = float(u @ v / (u.norm() * v.norm()))
            row.append(cos if 10 * cos > 1 else math.log1p(math.exp(10 * cos)) / 10)
        out.append(row)
    return out


@pytest.mark.parametrize("pooling", ["tokens", "released"])
def test_selection_score_matches_direct_computation(pooling: str) -> None:
    model = tiny_spt(pooling=pooling)
    with torch.no_grad():
        model.prompts.normal_(0, 1)
        got = model.selection_scores(IDS, MASK)
    want = direct_scores(model, IDS, MASK, over_padding=pooling == "released")
    assert got.flatten().tolist() == pytest.approx(sum(want, []), abs=1e-5)
    assert model.select(IDS, MASK).tolist() == [max(range(2), key=row.__getitem__) for row in want]


def test_pooling_switch_changes_scores_of_padded_rows_only() -> None:
    with torch.no_grad():
        tokens, released = tiny_spt(pooling="tokens"), tiny_spt(pooling="released")
        a, b = tokens.selection_scores(IDS, MASK), released.selection_scores(IDS, MASK)
    assert torch.allclose(a[0], b[0], atol=1e-6)  # row 0 has no padding
    assert not torch.allclose(a[1], b[1], atol=1e-4)


@pytest.mark.parametrize("kind", ["llama", "opt"])
def test_k_by_b_forward_equals_k_separate_forwards(kind: str) -> None:
    model = tiny_spt(kind)
    labels = IDS.masked_fill(MASK == 0, -100)
    labels[:, :2] = -100
    with torch.no_grad():
        batched = model.prompted_logits(IDS, MASK, labels)
        for k in range(2):
            prefix = model.prompts[k].unsqueeze(0).expand(3, -1, -1)
            full = model.base(inputs_embeds=torch.cat([prefix, model.embed(IDS)], 1),
                              attention_mask=torch.cat([torch.ones(3, 3, dtype=torch.long), MASK], 1)).logits[:, 3:]
            want = full[:, :-1][labels[:, 1:] != -100]
            assert torch.allclose(batched.logits[k], want, atol=1e-4)
    assert batched.rows.tolist() == [0, 0, 0, 1, 2, 2]
    assert batched.scores.shape == (3, 2)


def test_objective_backpropagates_into_prompts_and_normaliser_only() -> None:
    model = tiny_spt().train()
    labels = IDS.masked_fill(MASK == 0, -100)
    labels[:, :2] = -100
    pairs = torch.tensor([[0.0, 1.0, -1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    out = model(IDS, MASK, labels, IDS, MASK, pairs)
    out["loss"].backward()
    assert model.prompts.grad is not None and model.prompts.grad.abs().sum() > 0
    assert model.normalizer.weight.grad is not None
    assert all(p.grad is None for p in model.base.parameters())


def engine_outputs(model, rows, choices, batch_size):
    generator = engine_for(model, tiny_tokenizer(), "tiny-spt-test", batch_size=batch_size, progress=False)
    prompts = [TokenPrompt(r, prefix=prefix_name(c)) for r, c in zip(rows, choices)]
    return generator.generate(prompts, GenerationConfig(max_new_tokens=6)), generator


@pytest.mark.parametrize("kind", ["llama", "opt"])
def test_mixed_prompt_batch_equals_one_row_at_a_time(kind: str) -> None:
    model = tiny_spt(kind)
    with torch.no_grad():
        model.prompts.normal_(0, 1)
    rows = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15], [16]]
    choices = [0, 1, 1, 0]
    batched, _ = engine_outputs(model, rows, choices, 4)
    single, _ = engine_outputs(model, rows, choices, 1)
    assert batched == single
    assert any(batched)
    other, _ = engine_outputs(model, rows, [1 - c for c in choices], 4)
    assert other != batched  # the selected prompt really conditions its row


def test_engine_reference_nll_equals_prompted_forward() -> None:
    model = tiny_spt()
    prompt, target = [5, 6, 7], [8, 9]
    _, generator = engine_outputs(model, [prompt], [1], 1)
    (nll, count), = generator.loglikelihood([(TokenPrompt(prompt, prefix=prefix_name(1)), TokenPrompt(target))], add_eos=True)
    eos = generator.tokenizer.eos_token_id  # add_eos scores the tokenizer's end token
    with torch.no_grad():
        ids = torch.tensor([prompt + target + [eos]])
        logits = model.base(inputs_embeds=torch.cat([model.prompts[1:2], model.embed(ids)], 1)).logits[0, 3:]
        logp = torch.log_softmax(logits, -1)
        want = -sum(float(logp[2 + i, t]) for i, t in enumerate(target + [eos]))
    assert count == 3
    assert nll == pytest.approx(want, abs=1e-4)
