"""The generation engine every model plugs into: batched, length-sorted, cached, batch-invariant.

- ``config``: prompt kinds and ``GenerationConfig`` (decoding settings, all part of the cache key);
- ``engine``: ``Generator``, the one object that owns a model's state (model, tokenizer, pad/eos ids,
  prefix support, stats) and answers whole request lists from the cache or in planned batches;
- ``batching``: padding, one planned batch through ``generate`` or the prefix-sharing loop, scoring;
- ``prefix``: shared-prefix KV reuse for prompts cut from one dialogue;
- ``decoding``: per-row sampling, repetition penalty, stop strings and near-tie tracking;
- ``cache``: the SQLite cache of generations and log-likelihoods.
"""
from harness.generation.config import GenerationConfig, Prompt
from harness.generation.engine import Generator

__all__ = ["GenerationConfig", "Generator", "Prompt"]
