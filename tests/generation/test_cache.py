"""The generation cache: hits without loading the model, keys independent of batching, exact resume."""
from __future__ import annotations

import sqlite3

import pytest

import harness.generation.batching as batched
from harness.generation.cache import GenerationCache, make_key
from harness.generation import GenerationConfig, Generator
from tiny_lm import chat_prompts


class CountingLoader:
    """A loader that counts how often the engine asks for the model."""

    def __init__(self, loaded) -> None:
        self.loaded, self.calls = loaded, 0

    def __call__(self):
        self.calls += 1
        return self.loaded


def lazy(loaded, cache, batch_size=4):
    loader = CountingLoader(loaded)
    return Generator(fingerprint=loaded.fingerprint, loader=loader, cache=cache, batch_size=batch_size,
                     progress=False), loader


def test_warm_run_answers_from_cache_without_loading_the_model(tiny_llama, tmp_path):
    cache = GenerationCache(tmp_path / "gen.sqlite")
    prompts, cfg = chat_prompts(7), GenerationConfig(max_new_tokens=6)
    cold, cold_loader = lazy(tiny_llama, cache, batch_size=2)
    first = cold.generate(prompts, cfg)
    first_ll = cold.loglikelihood([(p, "fine thanks") for p in prompts])
    assert cold_loader.calls == 1 and cold.stats["generate_computed"] == 7
    warm, warm_loader = lazy(tiny_llama, GenerationCache(tmp_path / "gen.sqlite"), batch_size=16)
    assert warm.generate(prompts, cfg) == first
    assert warm.loglikelihood([(p, "fine thanks") for p in prompts]) == first_ll
    assert warm_loader.calls == 0 and warm.stats["generate_cached"] == 7 and warm.stats["generate_computed"] == 0
    mode = sqlite3.connect(tmp_path / "gen.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_key_covers_model_config_and_prompt_only():
    base = make_key("generate", "m|float32", {"max_new_tokens": 4}, "hi")
    assert base == make_key("generate", "m|float32", {"max_new_tokens": 4}, "hi")
    assert base != make_key("generate", "m|bfloat16", {"max_new_tokens": 4}, "hi")
    assert base != make_key("generate", "m|float32", {"max_new_tokens": 5}, "hi")
    assert base != make_key("generate", "m|float32", {"max_new_tokens": 4}, "hi!")
    assert base != make_key("loglikelihood", "m|float32", {"max_new_tokens": 4}, "hi")


def test_unseeded_sampling_is_never_cached(tiny_llama, tmp_path):
    cache = GenerationCache(tmp_path / "gen.sqlite")
    gen, _ = lazy(tiny_llama, cache)
    gen.generate(chat_prompts(3), GenerationConfig(max_new_tokens=4, do_sample=True))
    assert len(cache) == 0
    gen.generate(chat_prompts(3), GenerationConfig(max_new_tokens=4, do_sample=True, seed=1))
    assert len(cache) == 3


def test_interrupted_run_resumes_whole_batches_and_ends_identical(tiny_llama, tmp_path, monkeypatch):
    """Batches are planned over all requests, so a resumed run recomputes exactly the unfinished ones."""
    prompts, cfg = chat_prompts(10), GenerationConfig(max_new_tokens=6)
    pairs = [(p, "i like dogs") for p in prompts]
    clean, _ = lazy(tiny_llama, GenerationCache(tmp_path / "clean.sqlite"), batch_size=4)
    expected, expected_ll = clean.generate(prompts, cfg), clean.loglikelihood(pairs)

    real, calls = batched.generate_rows, []

    def dies_on_third_batch(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 3:
            raise KeyboardInterrupt  # stands in for a kill between batches
        return real(*args, **kwargs)

    monkeypatch.setattr(batched, "generate_rows", dies_on_third_batch)
    crashed, _ = lazy(tiny_llama, GenerationCache(tmp_path / "resume.sqlite"), batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        crashed.generate(prompts, cfg)
    assert len(GenerationCache(tmp_path / "resume.sqlite")) == 8  # two finished batches, stored at once
    monkeypatch.setattr(batched, "generate_rows", real)
    resumed, _ = lazy(tiny_llama, GenerationCache(tmp_path / "resume.sqlite"), batch_size=4)
    assert resumed.generate(prompts, cfg) == expected
    assert resumed.stats["generate_cached"] == 8 and resumed.stats["generate_computed"] == 2
    assert resumed.loglikelihood(pairs) == expected_ll  # bit-identical, not just close


def test_fingerprint_separates_weights_and_dtype(tiny_llama_dir, tmp_path):
    import shutil

    from harness.checkpoints.loader import model_fingerprint

    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama_dir, copy)
    original = model_fingerprint(str(tiny_llama_dir), "float32", "cpu")
    assert original.split("@")[1] == model_fingerprint(str(copy), "float32", "cpu").split("@")[1]
    assert original.endswith("|float32")
    assert model_fingerprint(str(copy), "bfloat16", "cpu").endswith("|bfloat16")
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\1")
    assert model_fingerprint(str(copy), "float32", "cpu") != model_fingerprint(str(tiny_llama_dir), "float32", "cpu")
