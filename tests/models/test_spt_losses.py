"""SPT's loss terms pinned against values computed by hand on a 2-prompt, 3-example toy.

Toy: vocabulary of 2, every target is token 0, so a token with logits (a, 0) costs log(1 + e^-a).
Example 0 has two target tokens, examples 1 and 2 one each (rows = [0, 0, 1, 2]).
"""
from __future__ import annotations

import math

import pytest
import torch

from models.spt.config import SPTConfig
from models.spt.losses import (bleu_pair_targets, contrastive_loss, example_means, fusion_loss, nll_loss, objective,
                               selection_loss, token_losses)
from models.spt.model import PromptedLogits

L3 = math.log(3.0)
# logits[k, n] = (a, 0) with a per prompt k and target token n
A = [[L3, 0.0, 0.0, -L3], [0.0, 0.0, L3, L3]]
ROWS = torch.tensor([0, 0, 1, 2])
TARGETS = torch.zeros(4, dtype=torch.long)
SCORES = torch.tensor([[1.0, 0.0], [1.0, 1.0], [L3, 0.0]])  # [B, K]


def ce(a: float) -> float:
    return math.log(1.0 + math.exp(-a))


def toy_logits() -> torch.Tensor:
    return torch.tensor([[[a, 0.0] for a in row] for row in A])


def hand_example_losses() -> list[list[float]]:
    """[B][K]: token mean of each prompt's CE per example."""
    return [[(ce(A[k][0]) + ce(A[k][1])) / 2 for k in range(2)], [ce(A[k][2]) for k in range(2)],
            [ce(A[k][3]) for k in range(2)]]


def test_token_losses_and_nll_match_hand_values() -> None:
    losses = token_losses(toy_logits(), TARGETS)
    expected = [[math.log(4 / 3), math.log(2), math.log(2), math.log(4)], [math.log(2), math.log(2), math.log(4 / 3), math.log(4 / 3)]]
    assert losses.flatten().tolist() == pytest.approx(sum(expected, []), abs=1e-6)
    assert float(nll_loss(losses)) == pytest.approx(sum(map(sum, expected)) / 8, abs=1e-6)
    means = example_means(losses, ROWS, 3).transpose(0, 1)
    assert means.flatten().tolist() == pytest.approx(sum(hand_example_losses(), []), abs=1e-6)


def test_selection_kl_matches_hand_value() -> None:
    ell = hand_example_losses()
    total = 0.0
    for b in range(3):
        gold = [math.exp(-x) / sum(math.exp(-y) for y in ell[b]) for x in ell[b]]
        q = [math.exp(s) / sum(math.exp(t) for t in SCORES[b].tolist()) for s in SCORES[b].tolist()]
        total += sum(p * math.log(p / qq) for p, qq in zip(gold, q))
    got = selection_loss(torch.tensor(ell), SCORES)
    assert float(got) == pytest.approx(total / 3, abs=1e-6)
    # example 2 by hand: p = (1/4, 3/4) from losses (log 4, log 4/3); q = softmax(ln 3, 0) = (3/4, 1/4)
    assert float(selection_loss(torch.tensor([ell[2]]), SCORES[2:])) == pytest.approx(
        0.25 * math.log(1 / 3) + 0.75 * math.log(3), abs=1e-6)


def test_selection_targets_are_detached() -> None:
    ell = torch.tensor(hand_example_losses(), requires_grad=True)
    selection_loss(ell, SCORES.clone().requires_grad_()).backward()
    assert ell.grad is None


def test_fusion_matches_hand_value() -> None:
    # fused logits of a token = sum_k s_{b,k} (a_k, 0): token-mean per example, then mean over examples
    fused = [sum(SCORES[int(ROWS[n]), k].item() * A[k][n] for k in range(2)) for n in range(4)]
    per_example = [(ce(fused[0]) + ce(fused[1])) / 2, ce(fused[2]), ce(fused[3])]
    assert per_example[2] == pytest.approx(math.log(1 + math.exp(L3 * L3)))
    got = fusion_loss(toy_logits(), SCORES, TARGETS, ROWS)
    assert float(got) == pytest.approx(sum(per_example) / 3, abs=1e-6)


def test_contrastive_one_positive_one_negative_pair() -> None:
    pairs = torch.zeros(3, 3)
    pairs[0, 1], pairs[0, 2] = 1.0, -1.0  # (0,1) similar, (0,2) not; (1,2) unlabelled
    # cos(s0, s1) = 1/sqrt 2 -> 1 - 1/sqrt 2; cos(s0, s2) = 1 -> max(0, 1)
    expected = ((1 - 1 / math.sqrt(2)) + 1.0) / 2
    assert float(contrastive_loss(SCORES, pairs)) == pytest.approx(expected, abs=1e-6)


def test_contrastive_all_pairs_and_bleu_labels() -> None:
    texts = ["i like dogs a lot and cats too", "i like dogs a lot and cats too", "completely different words here now"]
    pairs = bleu_pair_targets(texts, threshold=20.0)
    assert pairs.tolist() == [[0, 1, -1], [0, 0, -1], [0, 0, 0]]
    # 1 - 1/sqrt2 (pos) + max(0, 1) (neg) + max(0, 1/sqrt2) (neg), over 3 pairs = 2/3
    assert float(contrastive_loss(SCORES, pairs)) == pytest.approx(2 / 3, abs=1e-6)


def test_batch_of_one_skips_contrastive() -> None:
    assert float(contrastive_loss(SCORES[:1], torch.zeros(1, 1))) == 0.0
    assert float(contrastive_loss(SCORES[:1], None)) == 0.0
    config = SPTConfig(base="x", num_prompts=2, selection_weight=0.4, contrastive_weight=0.4)
    logits = toy_logits()[:, :2]
    out = objective(PromptedLogits(logits, TARGETS[:2], ROWS[:2], SCORES[:1], 1), None, config)
    expected = float(out["loss_nll"]) + 0.4 * float(out["loss_selection"]) + float(out["loss_fusion"])
    assert float(out["loss_contrastive"]) == 0.0
    assert float(out["loss"]) == pytest.approx(expected, abs=1e-6)


def test_objective_weights_and_pt_variant() -> None:
    pairs = bleu_pair_targets(["a b c d e", "a b c d e", "x y z w v"])
    config = SPTConfig(base="x", num_prompts=2, selection_weight=1.0, contrastive_weight=1.0)
    out = objective(PromptedLogits(toy_logits(), TARGETS, ROWS, SCORES, 3), pairs, config)
    total = sum(float(out[f"loss_{k}"]) for k in ("nll", "selection", "fusion", "contrastive"))
    assert float(out["loss"]) == pytest.approx(total, abs=1e-6)
    pt = SPTConfig(base="x", num_prompts=1, selector=False)
    only = objective(PromptedLogits(toy_logits()[:1], TARGETS, ROWS, None, 3), None, pt)
    assert set(only) == {"loss", "loss_nll"}
    assert float(only["loss"]) == pytest.approx((math.log(4 / 3) + 2 * math.log(2) + math.log(4)) / 4, abs=1e-6)
