"""Token-type prompts, per-row soft prefixes and the encoder hook: batched, cached, batch-invariant."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from harness.errors import UserError
from harness.generation import GenerationConfig, Generator, TokenPrompt
from harness.generation.cache import GenerationCache
from tiny_lm import CORPUS, tiny_tokenizer


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random GPT-2 (token-type embeddings through wte) with peaked next-token distributions."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from harness.checkpoints.loader import load_model

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=256,
                        initializer_range=0.3, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return load_model(str(folder), dtype="float32", device="cpu")


def engine(loaded, batch_size, **kwargs) -> Generator:
    return Generator(loaded.model, loaded.tokenizer, fingerprint=loaded.fingerprint, batch_size=batch_size,
                     progress=False, **kwargs)


def token_prompts(tokenizer, n: int, typed: bool = True) -> list[TokenPrompt]:
    """Prompts cut from one long text (shared prefixes, varied lengths), speaker-like types 5/6."""
    ids = tokenizer(" ".join(CORPUS[:5]))["input_ids"]
    prompts = []
    for i in range(n):
        row = ids[: 4 + (i * 5) % 40] if i % 3 else ids[7 : 12 + i]
        types = [5 + (j // 6) % 2 for j in range(len(row))] if typed else None
        prompts.append(TokenPrompt(row, token_type_ids=types))
    return prompts


def greedy_full_recompute(model, ids: list[int], types: list[int], steps: int, ends: set[int]) -> list[int]:
    """The reference: no cache, no padding, every new token typed like the prompt's last token."""
    ids, types, out = list(ids), list(types), []
    for _ in range(steps):
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])).logits
        token = int(logits[0, -1].argmax())
        if token in ends:
            break
        out.append(token)
        ids.append(token)
        types.append(types[-1])
    return out


def test_token_type_prompts_identical_at_batch_1_and_16_and_to_a_full_recompute(tiny_gpt2):
    prompts = token_prompts(tiny_gpt2.tokenizer, 20)
    cfg = GenerationConfig(max_new_tokens=10)
    batched = engine(tiny_gpt2, 16)
    out16 = batched.generate(prompts, cfg)
    assert out16 == engine(tiny_gpt2, 1).generate(prompts, cfg)
    assert 0 < batched.stats["prefill_tokens"] < batched.stats["prompt_tokens"]  # the prefix-sharing loop ran
    tok = tiny_gpt2.tokenizer
    for prompt, text in list(zip(prompts, out16))[:4]:
        ids = greedy_full_recompute(tiny_gpt2.model, list(prompt.input_ids), list(prompt.token_type_ids), 10,
                                    {tok.eos_token_id})
        assert text == tok.decode(ids, skip_special_tokens=True).strip()
    untyped = engine(tiny_gpt2, 16).generate(token_prompts(tok, 20, typed=False), cfg)
    assert sum(a != b for a, b in zip(untyped, out16)) >= 10  # the types really reach the model


def test_token_type_beam_search_and_stop_token_ids_batch_invariant(tiny_gpt2):
    prompts = token_prompts(tiny_gpt2.tokenizer, 6)
    free = engine(tiny_gpt2, 6).generate(prompts, GenerationConfig(max_new_tokens=8))
    stop_id = tiny_gpt2.tokenizer(free[0].split()[0] if free[0].split() else "a")["input_ids"][0]
    for cfg in (GenerationConfig(max_new_tokens=8, num_beams=3), GenerationConfig(max_new_tokens=8, stop_token_ids=(stop_id,)),
                GenerationConfig(max_new_tokens=8, repetition_penalty=1.5)):
        assert engine(tiny_gpt2, 6).generate(prompts, cfg) == engine(tiny_gpt2, 1).generate(prompts, cfg)


def test_length_penalty_reaches_beam_search_and_keeps_old_cache_keys(tiny_gpt2):
    assert "length_penalty" not in GenerationConfig(num_beams=3).key()  # entries made before the field still hit
    assert GenerationConfig(num_beams=3, length_penalty=2.0).key()["length_penalty"] == 2.0
    with pytest.raises(UserError, match="length_penalty only applies to beam search"):
        GenerationConfig(length_penalty=2.0)
    tok = tiny_gpt2.tokenizer
    prompts = token_prompts(tok, 12)
    free = engine(tiny_gpt2, 12).generate(prompts, GenerationConfig(max_new_tokens=12))
    counts = Counter(t for text in free for t in tok(text, add_special_tokens=False)["input_ids"])
    changed = []
    for stop_id, _ in counts.most_common(10):  # stop tokens make beams finish at many lengths
        lengths = {}
        for penalty in (-4.0, 4.0):
            cfg = GenerationConfig(max_new_tokens=12, num_beams=4, stop_token_ids=(stop_id,), length_penalty=penalty)
            out = engine(tiny_gpt2, 6).generate(prompts, cfg)
            assert out == engine(tiny_gpt2, 1).generate(prompts, cfg)
            lengths[penalty] = [len(tok(text, add_special_tokens=False)["input_ids"]) for text in out]
        if lengths[4.0] != lengths[-4.0]:
            changed.append(stop_id)
            # a larger exponent divides long beams' (negative) sums more, so the longer finished beams win
            assert all(long >= short for long, short in zip(lengths[4.0], lengths[-4.0]))
    assert changed  # the penalty really reaches transformers' beam scorer


def test_token_prompt_loglikelihood_equals_a_direct_forward(tiny_gpt2):
    tok, model = tiny_gpt2.tokenizer, tiny_gpt2.model
    prompts = token_prompts(tok, 5)
    values = engine(tiny_gpt2, 5).loglikelihood([(p, "i am fine") for p in prompts], add_eos=True)
    target = tok("i am fine", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    for prompt, (nll, count) in zip(prompts, values):
        ids = list(prompt.input_ids) + target
        types = list(prompt.token_type_ids) + [prompt.token_type_ids[-1]] * len(target)
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids]),
                                               token_type_ids=torch.tensor([types])).logits[0].double(), -1)
        start = len(prompt.input_ids)
        expected = -sum(logprobs[start - 1 + j, t].item() for j, t in enumerate(target))
        assert count == len(target) and nll == pytest.approx(expected, rel=1e-4)
    given = TokenPrompt(target, token_type_ids=[6] * len(target))  # explicit continuation ids and types
    assert engine(tiny_gpt2, 2).loglikelihood([(prompts[0], given)])[0] != values[0]


def test_mixing_typed_and_untyped_token_prompts_is_refused(tiny_gpt2):
    typed, untyped = token_prompts(tiny_gpt2.tokenizer, 1)[0], token_prompts(tiny_gpt2.tokenizer, 2, typed=False)[1]
    with pytest.raises(UserError, match="cannot be mixed"):
        engine(tiny_gpt2, 2).generate([typed, untyped], GenerationConfig(max_new_tokens=2))
    with pytest.raises(UserError, match="needs an encoder-decoder"):
        engine(tiny_gpt2, 2).generate([TokenPrompt((1, 2), encoder_extra=3)], GenerationConfig(max_new_tokens=2))


def test_interrupted_token_prompt_run_resumes_and_ends_identical(tiny_gpt2, tmp_path, monkeypatch):
    import harness.generation.batching as batching

    prompts, cfg = token_prompts(tiny_gpt2.tokenizer, 10), GenerationConfig(max_new_tokens=6)
    expected = engine(tiny_gpt2, 4).generate(prompts, cfg)
    real, calls = batching.generate_rows, []

    def dies_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for a kill between batches
        return real(*args, **kwargs)

    monkeypatch.setattr(batching, "generate_rows", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        engine(tiny_gpt2, 4, cache=GenerationCache(tmp_path / "c.sqlite")).generate(prompts, cfg)
    monkeypatch.setattr(batching, "generate_rows", real)
    resumed = engine(tiny_gpt2, 4, cache=GenerationCache(tmp_path / "c.sqlite"))
    assert resumed.generate(prompts, cfg) == expected
    assert resumed.stats["generate_cached"] == 4 and resumed.stats["generate_computed"] == len(set(prompts)) - 4


def prefix_tables(hidden: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return {"persona-a": torch.randn(3, hidden, generator=generator) * 0.3,
            "persona-b": torch.randn(2, hidden, generator=generator) * 0.3}


def with_prefixes(loaded, batch_size, tables, **kwargs) -> Generator:
    gen = engine(loaded, batch_size, **kwargs)
    for name, table in tables.items():
        gen.register_prefix(name, table)
    return gen


def test_soft_prompt_rows_with_two_prefixes_in_one_batch_equal_peft_prompt_tuning(tiny_llama, tiny_llama_dir):
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    tok = tiny_llama.tokenizer
    tables = prefix_tables(tiny_llama.model.config.hidden_size)
    plain = token_prompts(tok, 16, typed=False)
    prompts = [TokenPrompt(p.input_ids, prefix=("persona-a", "persona-b")[i % 2]) for i, p in enumerate(plain)]
    cfg = GenerationConfig(max_new_tokens=8)
    batched = with_prefixes(tiny_llama, 16, tables)
    out16 = batched.generate(prompts, cfg)
    assert out16 == with_prefixes(tiny_llama, 1, tables).generate(prompts, cfg)
    assert batched.stats["prefill_tokens"] < batched.stats["prompt_tokens"]  # rows of one prefix shared work
    swapped = [TokenPrompt(p.input_ids, prefix=("persona-b", "persona-a")[i % 2]) for i, p in enumerate(plain)]
    assert sum(a != b for a, b in zip(with_prefixes(tiny_llama, 16, tables).generate(swapped, cfg), out16)) >= 8
    # the SPT computation: a peft prompt-tuning model holding the same table, one prompt per generate call
    for name in tables:
        base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), dtype=torch.float32).eval()
        peft_model = get_peft_model(base, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=len(tables[name])))
        with torch.no_grad():
            peft_model.prompt_encoder["default"].embedding.weight.copy_(tables[name])
        for prompt, text in zip(prompts, out16):
            if prompt.prefix != name:
                continue
            ids = torch.tensor([prompt.input_ids])
            with torch.inference_mode():
                out = peft_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                          do_sample=False, pad_token_id=tok.pad_token_id)
            assert text == tok.decode(out[0, -8:] if out.shape[1] == 8 else out[0, ids.shape[1]:],
                                      skip_special_tokens=True).strip()


def test_soft_prompt_loglikelihood_batch_invariant(tiny_llama):
    tables = prefix_tables(tiny_llama.model.config.hidden_size)
    plain = token_prompts(tiny_llama.tokenizer, 6, typed=False)
    pairs = [(TokenPrompt(p.input_ids, prefix=("persona-a", "persona-b")[i % 2]), "i like dogs") for i, p in enumerate(plain)]
    together = with_prefixes(tiny_llama, 6, tables).loglikelihood(pairs)
    alone = with_prefixes(tiny_llama, 1, tables).loglikelihood(pairs)
    for (a, n), (b, m) in zip(together, alone):
        assert n == m and a == pytest.approx(b, rel=1e-4)
    bare = engine(tiny_llama, 6).loglikelihood([(TokenPrompt(p.input_ids), "i like dogs") for p in plain])
    assert all(abs(a[0] - b[0]) > 1e-3 for a, b in zip(together, bare))


def test_cache_hit_on_second_call_and_key_follows_prefix_content_and_types(tiny_llama, tiny_gpt2, tmp_path):
    tables = prefix_tables(tiny_llama.model.config.hidden_size)
    prompts = [TokenPrompt(p.input_ids, prefix="persona-a") for p in token_prompts(tiny_llama.tokenizer, 5, typed=False)]
    cfg = GenerationConfig(max_new_tokens=6)
    first = with_prefixes(tiny_llama, 4, tables, cache=GenerationCache(tmp_path / "c.sqlite"))
    texts = first.generate(prompts, cfg)
    loads = []
    warm = Generator(fingerprint=tiny_llama.fingerprint, loader=lambda: loads.append(1) or tiny_llama,
                     cache=GenerationCache(tmp_path / "c.sqlite"), batch_size=4, progress=False)
    for name, table in tables.items():
        warm.register_prefix(name, table)
    assert warm.generate(prompts, cfg) == texts
    assert warm.stats["generate_cached"] == 5 and warm.stats["generate_computed"] == 0 and not loads
    retrained = with_prefixes(tiny_llama, 4, {**tables, "persona-a": tables["persona-a"] + 0.01},
                              cache=GenerationCache(tmp_path / "c.sqlite"))
    retrained.generate(prompts, cfg)
    assert retrained.stats["generate_computed"] == 5  # same name, new content: new keys
    typed = token_prompts(tiny_gpt2.tokenizer, 3)
    retyped = [TokenPrompt(p.input_ids, token_type_ids=[7] * len(p.input_ids)) for p in typed]
    gen = engine(tiny_gpt2, 3, cache=GenerationCache(tmp_path / "c.sqlite"))
    gen.generate(typed, cfg)
    gen.generate(retyped, cfg)
    assert gen.stats["generate_computed"] == 6
    with pytest.raises(UserError, match="not registered"):
        engine(tiny_llama, 2).generate([TokenPrompt((1, 2), prefix="missing")], cfg)


class StrategyMemory:
    """A MAGIC-style hook: encode the context, then append one memory vector per row as an extra position."""

    def __init__(self, bank: torch.Tensor, version: str = "v1") -> None:
        self.bank = bank
        self.key = f"test-strategy-memory/{version}"

    def encode(self, model, input_ids, attention_mask, extras):
        from transformers.modeling_outputs import BaseModelOutput

        states = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        memory = self.bank[torch.tensor([int(e["strategy"]) for e in extras])].to(states)
        states = torch.cat([states, memory[:, None]], dim=1)
        mask = torch.cat([attention_mask, attention_mask.new_ones((len(extras), 1))], dim=1)
        return BaseModelOutput(last_hidden_state=states), mask


def test_encoder_hook_is_batched_cached_and_batch_invariant(tiny_t5_dir, tmp_path):
    from harness.checkpoints.loader import load_model

    t5 = load_model(str(tiny_t5_dir), dtype="float32", device="cpu")
    ids = t5.tokenizer(" ".join(CORPUS[:3]))["input_ids"]
    prompts = [TokenPrompt(ids[: 5 + 3 * i], encoder_extra={"strategy": i % 3}) for i in range(6)]
    hook = StrategyMemory(torch.randn(3, t5.model.config.d_model, generator=torch.Generator().manual_seed(0)) * 3)
    for cfg in (GenerationConfig(max_new_tokens=6), GenerationConfig(max_new_tokens=6, num_beams=3)):
        together = engine(t5, 6).generate(prompts, cfg, encoder_hook=hook)
        assert together == engine(t5, 1).generate(prompts, cfg, encoder_hook=hook)
    plain = [TokenPrompt(p.input_ids) for p in prompts]
    greedy = GenerationConfig(max_new_tokens=6)
    assert engine(t5, 6).generate(plain, greedy) != engine(t5, 6).generate(prompts, greedy, encoder_hook=hook)
    cached = engine(t5, 6, cache=GenerationCache(tmp_path / "c.sqlite"))
    cached.generate(prompts, greedy, encoder_hook=hook)
    cached.generate(prompts, greedy, encoder_hook=hook)
    assert cached.stats["generate_computed"] == 6 and cached.stats["generate_cached"] == 6
    cached.generate(prompts, greedy, encoder_hook=StrategyMemory(hook.bank, version="v2"))
    assert cached.stats["generate_computed"] == 12  # the hook's key is part of the cache key
    scored = engine(t5, 6).loglikelihood([(p, "fine") for p in prompts], encoder_hook=hook)
    alone = engine(t5, 1).loglikelihood([(p, "fine") for p in prompts], encoder_hook=hook)
    assert [n for _, n in scored] == [n for _, n in alone]
    assert [v for v, _ in scored] == pytest.approx([v for v, _ in alone], rel=1e-4)
    assert all(math.isfinite(nll) and count >= 1 for nll, count in scored)
    with pytest.raises(UserError, match="no encoder_hook"):
        engine(t5, 2).generate(prompts[:2], greedy)
