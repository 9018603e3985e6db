"""The generation engine every model plugs into: batched, length-sorted, cached, batch-invariant.

Every prompt kind below goes through the same planner (whole request list, sorted, prefix-shared),
the same SQLite cache (key = model fingerprint + decoding config + everything the prompt carries)
and the same near-tie re-check, so greedy outputs at batch 16 equal those at batch 1::

    gen = Generator.from_source("embedded:smollm2-135m-instruct", cache=GenerationCache(path))
    cfg = GenerationConfig(max_new_tokens=32)

    gen.generate(["Once upon a time"], cfg)                                  # text
    gen.generate([[{"role": "user", "content": "hi"}]], cfg)                 # chat (chat template)
    gen.generate([TokenPrompt(ids, token_type_ids=types)],                   # GPT-2 token types
                 GenerationConfig(max_new_tokens=32, stop_token_ids=(sp1, sp2)))
    gen.register_prefix("persona-3", table)                                  # soft prompt [n_virtual, hidden]
    gen.generate([TokenPrompt(ids, prefix="persona-3"),                      # per-row soft prompts (SPT),
                  TokenPrompt(ids2, prefix="persona-1")], cfg)               # mixed in one batch
    gen.generate([TokenPrompt(ids, encoder_extra={"strategy": 2})], cfg,     # encoder-decoder with extra
                 encoder_hook=hook)                                          # encoder inputs (MAGIC)
    gen.loglikelihood([(TokenPrompt(ids, token_type_ids=types), "reference")], add_eos=True)  # NLL

An ``EncoderHook`` has a ``key`` (identity + version + content hash of what it reads; part of the
cache key) and ``encode(model, input_ids, attention_mask, extras) -> (BaseModelOutput, mask)``.
``gen.model_state()`` gives the loaded ``ModelState`` (model, tokenizer, pad/eos ids, device, stats).

- ``config``: prompt kinds (``TokenPrompt``), ``EncoderHook`` and ``GenerationConfig`` (decoding
  settings, all part of the cache key);
- ``engine``: ``Generator``: answers whole request lists from the cache or in planned batches;
- ``state``: ``ModelState``, the loaded model as the collaborators below see it;
- ``prompts``: every prompt kind as a ``Row`` (ids, types, soft prefix), padding into model inputs;
- ``batching``: one planned batch through ``generate`` or the prefix-sharing loop, scoring;
- ``prefix``: shared-prefix KV reuse for prompts cut from one dialogue;
- ``decoding``: per-row sampling, repetition penalty, stop strings and near-tie tracking;
- ``cache``: the SQLite cache of generations and log-likelihoods.
"""
from harness.generation.config import Continuation, EncoderHook, GenerationConfig, Prompt, TokenPrompt
from harness.generation.engine import Generator
from harness.generation.state import ModelState

__all__ = ["Continuation", "EncoderHook", "GenerationConfig", "Generator", "ModelState", "Prompt", "TokenPrompt"]
