"""Per-row logit control for batched decoding: what makes a row's output independent of its batch.

transformers' own processors see a left-padded batch as one tensor, which leaks batch composition
into results in two places this module closes:

- Repetition penalty: ``RepetitionPenaltyLogitsProcessor`` penalises every id in ``input_ids``,
  padding included. With pad = eos (SmolLM2, GPT-2) a padded row gets its end token penalised and an
  unpadded one does not, so the same prompt ends differently in different batches. Here the penalty
  skips each row's padding.
- N-gram blocking: ``NoRepeatNGramLogitsProcessor`` reads every column, so a padded row's pad
  n-grams can ban tokens an unpadded one may use. Here each row's n-grams start after its padding.
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
    ``rows_per_prompt`` consecutive rows. ``seeds`` (one per prompt) switches sampling on. With
    ``record_margins`` the smallest top-1/top-2 gap of each prompt is kept in ``margins``; rows that
    already produced an ``end_ids`` token at or after column ``generated_from`` (transformers keeps
    feeding finished rows) no longer count. ``select`` drops finished rows in a loop that prunes them.
    """

    def __init__(self, pad_lengths: Sequence[int], *, rows_per_prompt: int = 1, repetition_penalty: float = 1.0,
                 no_repeat_ngram_size: int = 0, sampling: Sampling | None = None, seeds: Sequence[int] | None = None,
                 record_margins: bool = False,
                 end_ids: Sequence[int] = (), generated_from: int | None = None):
        self.pad_lengths = [p for p in pad_lengths for _ in range(rows_per_prompt)]
        self._pads: torch.Tensor | None = None
        self.penalty = repetition_penalty
        self.no_repeat = no_repeat_ngram_size
        self.sampling = sampling
        self.generators: list[torch.Generator] | None = None
        if sampling is not None:
            if seeds is None or len(seeds) != len(pad_lengths):
                raise ValueError("sampling needs one seed per prompt")
            self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.record_margins = record_margins
        self.rows = list(range(len(self.pad_lengths)))
        self.margins = [float("inf")] * len(self.pad_lengths)
        self.end_ids = torch.tensor(sorted(set(end_ids)), dtype=torch.long)
        self.generated_from = generated_from
        self.finished: list[bool] = [False] * len(self.pad_lengths)
        """Batch positions a pruning loop knows are done but has not removed yet (margins skip them)."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = self._shape(input_ids, scores)
        if self.record_margins and scores.shape[-1] > 1:
            self._record(input_ids, scores)
        if self.generators is not None:
            scores = self._sample(scores)
        return scores

    def choose(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Return each row's next token (for a loop of our own: one top-2 pass serves margin and choice)."""
        scores = self._shape(input_ids, scores)
        if self.generators is not None:
            return self._sample(scores).argmax(dim=-1)
        top = torch.topk(scores, 2, dim=-1)
        if self.record_margins:
            self._record(input_ids, scores, top.values)
        gaps = top.values[:, 0] - top.values[:, 1]
        if bool((gaps == 0).any()):  # exact tie: take argmax's choice (the lowest id), as transformers does
            return scores.argmax(dim=-1)
        return top.indices[:, 0]

    def select(self, keep: Sequence[int]) -> None:
        """Keep only the batch positions ``keep`` (rows that finished were removed from the batch)."""
        self.rows = [self.rows[j] for j in keep]
        self.pad_lengths = [self.pad_lengths[j] for j in keep]
        self._pads = None
        self.finished = [self.finished[j] for j in keep]
        if self.generators is not None:
            self.generators = [self.generators[j] for j in keep]

    def _record(self, input_ids: torch.Tensor, scores: torch.Tensor, top: torch.Tensor | None = None) -> None:
        top = torch.topk(scores, 2, dim=-1).values if top is None else top
        gaps = (top[:, 0] - top[:, 1]).float().cpu().tolist()
        finished = list(self.finished)
        if self.generated_from is not None and len(self.end_ids) and input_ids.shape[1] > self.generated_from:
            tail = input_ids[:, self.generated_from:].cpu()
            finished = torch.isin(tail, self.end_ids).any(dim=1).tolist()
        for position, (gap, done) in enumerate(zip(gaps, finished)):
            row = self.rows[position]
            if not done and gap < self.margins[row]:
                self.margins[row] = gap

    def _pad_column(self, device: torch.device) -> torch.Tensor:
        """Return the rows' left-padding lengths as a (rows, 1) tensor, built once per batch shape."""
        if self._pads is None or self._pads.device != device:
            self._pads = torch.tensor(self.pad_lengths, device=device).unsqueeze(1)
        return self._pads

    def _shape(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Apply the repetition penalty, then the n-gram block (transformers' processor order)."""
        if self.penalty != 1.0:
            scores = self._penalise(input_ids, scores)
        if self.no_repeat > 0:
            scores = self._block_ngrams(input_ids, scores)
        return scores

    def _block_ngrams(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Ban each token that would repeat an n-gram of the row's own tokens (its padding excluded).

        Same rule as transformers' ``NoRepeatNGramLogitsProcessor`` on an unpadded row, without its
        Python loop over rows and positions: the n-grams are a strided view of the ids.
        """
        n, width = self.no_repeat, input_ids.shape[1]
        if width < n:
            return scores
        grams = input_ids.unfold(1, n, 1)  # (rows, width - n + 1, n)
        current = input_ids[:, width - n + 1:]  # the n - 1 latest tokens (empty for n = 1)
        match = (grams[:, :, :n - 1] == current.unsqueeze(1)).all(dim=-1)
        pads = self._pad_column(input_ids.device)
        starts = torch.arange(grams.shape[1], device=input_ids.device).unsqueeze(0)
        match &= starts >= pads  # an n-gram that begins in the padding is not the row's own
        # scatter_add, not a boolean scatter: repeated ids with mixed True/False must still ban
        hits = match.to(scores.device, torch.float)
        last = grams[:, :, -1].to(scores.device)
        banned = torch.zeros(scores.shape, device=scores.device).scatter_add_(1, last, hits)
        return scores.masked_fill(banned > 0, float("-inf"))

    def _penalise(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Penalise each row's earlier tokens (CTRL rule, as transformers), ignoring its left padding."""
        pads = self._pad_column(input_ids.device)
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


def as_processor(control: RowControl) -> Any:
    """Return ``control`` wrapped as a transformers ``LogitsProcessorList``."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class _Processor(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            return control(input_ids, scores)

    return LogitsProcessorList([_Processor()])


class StopStrings:
    """Decides when a row's generated text contains a stop string (checked on the generated part only).

    transformers' ``StopStringCriteria`` also matches across the prompt/generation boundary; checking
    only the generated text keeps the batched loop and the one-row ``generate`` path in agreement.
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
        self.tokenizer, self.stops = tokenizer, tuple(stops)

    def __call__(self, generated: Sequence[int]) -> bool:
        """Return True when the decoded ``generated`` ids contain a stop string."""
        if not self.stops:
            return False
        text = self.tokenizer.decode(list(generated), skip_special_tokens=True)
        return any(stop in text for stop in self.stops)

    def criteria(self, generated_from: int) -> Any:
        """Return a transformers ``StoppingCriteriaList`` applying this check to columns >= generated_from."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        check = self

        class _Criterion(StoppingCriteria):
            def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
                done = [check(row[generated_from:].tolist()) for row in input_ids]
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([_Criterion()])
