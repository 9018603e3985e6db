"""Per-row logit control for batched decoding: what makes a row's output independent of its batch.

transformers' own processors see a left-padded batch as one tensor, which leaks batch composition
into results in two places this module closes:

- Repetition penalty: ``RepetitionPenaltyLogitsProcessor`` penalises every id in ``input_ids``,
  padding included. With pad = eos (SmolLM2, GPT-2) a padded row gets its end token penalised and an
  unpadded one does not, so the same prompt ends differently in different batches. Here the penalty
  skips each row's padding.
- Sampling: ``do_sample`` draws the whole batch from the global RNG, so a prompt's sample depends on
  its neighbours and its position. Here every row draws from its own ``torch.Generator`` seeded from
  the request's cache key (which includes the user's seed), and the drawn token is forced by masking
  all others; transformers then runs in greedy mode and simply takes it.

For greedy decoding the processor also records each row's margin between the best and second-best
score at every step. The engine uses it to detect near-ties that numeric noise could flip (see
``harness.generation``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import torch


def row_seed(key: str) -> int:
    """Return a 63-bit RNG seed derived from a request key (position- and batch-independent)."""
    return int(hashlib.sha256(f"seed:{key}".encode()).hexdigest()[:15], 16)


@dataclass
class Sampling:
    """Sampling parameters, applied in the order transformers uses: temperature, top-k, top-p."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Return the sampling distribution over the vocabulary for each row of ``scores``."""
        scores = scores / self.temperature
        if 0 < self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, self.top_k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=True, dim=-1)
            probs = ordered.softmax(dim=-1)
            drop = probs.cumsum(dim=-1) - probs > self.top_p  # keep the smallest prefix reaching top_p
            drop[..., 0] = False
            scores = scores.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
        return scores.softmax(dim=-1)


class RowControl:
    """A transformers LogitsProcessor applying per-row repetition penalty, seeded sampling, margin records.

    ``pad_lengths[i]`` is the left padding of prompt i; with beam search each prompt owns
    ``rows_per_prompt`` consecutive rows. ``seeds`` (one per prompt) switches sampling on.
    """

    def __init__(self, pad_lengths: Sequence[int], *, rows_per_prompt: int = 1, repetition_penalty: float = 1.0,
                 sampling: Sampling | None = None, seeds: Sequence[int] | None = None, record_margins: bool = False):
        self.pad_lengths = [p for p in pad_lengths for _ in range(rows_per_prompt)]
        self.penalty = repetition_penalty
        self.sampling = sampling
        self.generators = None
        if sampling is not None:
            if seeds is None or len(seeds) != len(pad_lengths):
                raise ValueError("sampling needs one seed per prompt")
            self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.record_margins = record_margins
        self.margins: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.penalty != 1.0:
            scores = self._penalise(input_ids, scores)
        if self.record_margins and scores.shape[-1] > 1:
            top = torch.topk(scores, 2, dim=-1).values
            self.margins.append((top[:, 0] - top[:, 1]).float().cpu())
        if self.generators is not None and self.sampling is not None:
            scores = self._sample(scores)
        return scores

    def _penalise(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Penalise each row's earlier tokens (CTRL rule, as transformers), ignoring its left padding."""
        pads = torch.tensor(self.pad_lengths, device=input_ids.device).unsqueeze(1)
        first_real = torch.gather(input_ids, 1, pads)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        # padding points at the row's first real token: scatter then writes an equal value twice
        ids = torch.where(positions < pads, first_real, input_ids)
        picked = torch.gather(scores, 1, ids)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, ids, picked)

    def _sample(self, scores: torch.Tensor) -> torch.Tensor:
        """Draw one token per row from its own generator and return scores that force that token."""
        probs = (self.sampling or Sampling()).probabilities(scores.float()).cpu()
        forced = torch.full_like(scores, float("-inf"))
        for row, generator in enumerate(self.generators or ()):
            token = torch.multinomial(probs[row], 1, generator=generator)
            forced[row, token.to(forced.device)] = 0.0
        return forced

    def min_margins(self, decided: Sequence[int]) -> list[float]:
        """Return each row's smallest recorded margin over its first ``decided[row]`` steps."""
        if not self.margins:
            return [float("inf")] * len(decided)
        table = torch.stack(self.margins)  # steps x rows
        return [float(table[: max(1, n), row].min()) if n else float("inf") for row, n in enumerate(decided)]


def as_processor(control: RowControl) -> Any:
    """Return ``control`` wrapped as a transformers ``LogitsProcessorList``."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class _Processor(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            return control(input_ids, scores)

    return LogitsProcessorList([_Processor()])
