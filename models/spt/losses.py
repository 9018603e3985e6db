"""SPT's training objective (systems.md section 2.3): L = NLL + w_sel L_sel + w_fus L_fusion + w_ctr L_ctr.

Each term is a small pure function of tensors so the unit tests can pin it against hand values.
Shapes: token losses/logits are k-major over prompts ([K, N] / [K, N, V], N target tokens of the
batch), scores are [B, K]; ``rows`` [N] names the example of each target token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from models.spt.config import SPTConfig


@dataclass
class PromptedLogits:
    """Logits of every prompt at the batch's target positions.

    ``logits`` [K, N, V] (float32), ``targets`` [N] token ids, ``rows`` [N] the example of each
    target token, ``scores`` [B, K] selection scores (None without a selector), ``batch_size`` B.
    """

    logits: torch.Tensor
    targets: torch.Tensor
    rows: torch.Tensor
    scores: torch.Tensor | None
    batch_size: int


def token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Return the cross-entropy of every prompt at every target token, [K, N]."""
    k, n, v = logits.shape
    return nn.functional.cross_entropy(logits.reshape(k * n, v), targets.repeat(k), reduction="none").reshape(k, n)


def example_means(values: torch.Tensor, rows: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Return the per-example mean of token values [..., N] -> [..., B] (rows [N] index examples)."""
    counts = torch.bincount(rows, minlength=batch_size).to(values.dtype).clamp(min=1.0)
    sums = torch.zeros(*values.shape[:-1], batch_size, dtype=values.dtype, device=values.device)
    return sums.index_add(-1, rows, values) / counts


def nll_loss(losses: torch.Tensor) -> torch.Tensor:
    """Return the mean token loss over every prompted copy (every prompt trains on every example)."""
    return losses.mean()


def selection_loss(example_losses: torch.Tensor, scores: torch.Tensor, tau_gold: float = 1.0,
                   tau_sim: float = 1.0) -> torch.Tensor:
    """Return KL(p || softmax(s/tau_sim)) averaged over examples, p = softmax(-loss/tau_gold) (detached).

    ``example_losses`` and ``scores`` are [B, K]: the prompts that fit an example best become the
    selector's target distribution.
    """
    gold = torch.softmax(-example_losses.detach() / tau_gold, dim=-1)
    log_q = torch.log_softmax(scores / tau_sim, dim=-1)
    return nn.functional.kl_div(log_q, gold, reduction="batchmean")


def fusion_loss(logits: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Return the CE of score-weighted logits sum_k s_{k,b} logits_{k,b}: token mean per example, then mean.

    Raw softplus scores weight the logits (not normalised ones), as the released code does.
    """
    weights = scores[rows].transpose(0, 1).unsqueeze(-1)  # [K, N, 1]
    fused = (weights * logits).sum(dim=0)
    per_token = nn.functional.cross_entropy(fused, targets, reduction="none")
    return example_means(per_token, rows, scores.shape[0]).mean()


def bleu_pair_targets(texts: Sequence[str], threshold: float = 20.0) -> torch.Tensor:
    """Return [B, B] labels for pairs i < j: +1 when sacreBLEU sentence_score(text_i, [text_j]) > threshold, else -1.

    Entries on and below the diagonal are 0 (not a pair). effective_order=True as published.
    """
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    size = len(texts)
    out = torch.zeros(size, size)
    for i in range(size):
        for j in range(i + 1, size):
            out[i, j] = 1.0 if bleu.sentence_score(texts[i], [texts[j]]).score > threshold else -1.0
    return out


def contrastive_loss(scores: torch.Tensor, pair_targets: torch.Tensor | None) -> torch.Tensor:
    """Return the mean CosineEmbeddingLoss (margin 0) of score vectors over labelled pairs i < j.

    1 - cos for a +1 pair, max(0, cos) for a -1 pair. A batch of one has no pairs: the term is 0
    (the released code skips it).
    """
    if pair_targets is None or scores.shape[0] < 2:
        return scores.sum() * 0.0
    i, j = torch.nonzero(pair_targets.to(scores.device) != 0, as_tuple=True)
    if i.numel() == 0:
        return scores.sum() * 0.0
    labels = pair_targets.to(scores.device)[i, j].to(scores.dtype)
    return nn.functional.cosine_embedding_loss(scores[i], scores[j], labels, margin=0.0)


def objective(out: PromptedLogits, pair_targets: torch.Tensor | None, config: SPTConfig) -> dict[str, torch.Tensor]:
    """Return ``loss`` (the total) and each term; without a selector (pt) the loss is the NLL alone."""
    losses = token_losses(out.logits, out.targets)
    nll = nll_loss(losses)
    parts = {"nll": nll}
    total = nll
    if out.scores is not None:
        per_example = example_means(losses, out.rows, out.batch_size).transpose(0, 1)  # [B, K]
        parts["selection"] = selection_loss(per_example, out.scores, config.tau_gold, config.tau_sim)
        parts["fusion"] = fusion_loss(out.logits, out.scores, out.targets, out.rows)
        parts["contrastive"] = contrastive_loss(out.scores, pair_targets)
        total = (total + config.selection_weight * parts["selection"] + config.fusion_weight * parts["fusion"]
                 + config.contrastive_weight * parts["contrastive"])
    return {"loss": total, **{f"loss_{name}": value.detach() for name, value in parts.items()}}
