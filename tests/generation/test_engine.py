"""The generation engine on tiny random models: batch invariance, decoding modes, scoring."""
from __future__ import annotations

import math

import pytest
import torch

from harness.errors import UserError
from harness.generation import GenerationConfig, Generator
from tiny_lm import chat_prompts


def engine(loaded, batch_size, **kwargs) -> Generator:
    return Generator(loaded.model, loaded.tokenizer, fingerprint=loaded.fingerprint, batch_size=batch_size,
                     progress=False, **kwargs)


def one_at_a_time(loaded, prompts, max_new_tokens):
    """The papers' style: one prompt per ``generate`` call, transformers defaults, no padding."""
    tok, outputs = loaded.tokenizer, []
    for prompt in prompts:
        text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.inference_mode():
            out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                        do_sample=False, pad_token_id=tok.pad_token_id)
        outputs.append(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return outputs


def test_greedy_identical_at_batch_1_and_16_and_to_one_prompt_per_call(tiny_llama):
    prompts = chat_prompts(20)
    cfg = GenerationConfig(max_new_tokens=10)
    batched = engine(tiny_llama, 16)
    out16 = batched.generate(prompts, cfg)
    out1 = engine(tiny_llama, 1).generate(prompts, cfg)
    assert out16 == out1
    assert out16 == one_at_a_time(tiny_llama, prompts, 10)
    assert len(set(out16)) > 5  # real, prompt-dependent text, not one repeated string
    # the batched path ran, sharing the system prompt between rows
    assert 0 < batched.stats["prefill_tokens"] < batched.stats["prompt_tokens"]


def test_near_tie_rows_are_rerun_alone(flat_llama_dir):
    """At 0.02 init every step is a near-tie: the re-check must run and keep batch-1 outputs."""
    from harness.checkpoints.loader import load_model

    flat = load_model(str(flat_llama_dir), dtype="float32", device="cpu")
    prompts = chat_prompts(8)
    cfg = GenerationConfig(max_new_tokens=8)
    batched = engine(flat, 8, tie_margin=10.0)  # every row counts as a near-tie
    assert batched.generate(prompts, cfg) == engine(flat, 1).generate(prompts, cfg)
    assert batched.stats["near_ties"] == 8


def test_order_restored_and_duplicates_computed_once(tiny_llama):
    prompts = chat_prompts(6)
    cfg = GenerationConfig(max_new_tokens=6)
    gen = engine(tiny_llama, 4)
    reference = gen.generate(prompts, cfg)
    shuffled = [prompts[i] for i in (5, 0, 3, 3, 1)]
    gen.stats.clear()
    assert gen.generate(shuffled, cfg) == [reference[i] for i in (5, 0, 3, 3, 1)]
    assert gen.stats["generate_computed"] == 4


def test_stop_strings_cut_output(tiny_llama):
    prompts = chat_prompts(4)
    free = engine(tiny_llama, 4).generate(prompts, GenerationConfig(max_new_tokens=12))
    word = next(w for w in free[0].split() if len(w) > 1)  # something the model does write
    cfg = GenerationConfig(max_new_tokens=12, stop=(word,))
    stopped = engine(tiny_llama, 4).generate(prompts, cfg)
    assert word not in stopped[0] and free[0].startswith(stopped[0])
    assert stopped == engine(tiny_llama, 1).generate(prompts, cfg)  # rows leaving the batch early


def test_seeded_sampling_independent_of_batch_and_position(tiny_llama):
    prompts = chat_prompts(6)
    cfg = GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=0.95, top_k=40, seed=7)
    together = engine(tiny_llama, 6).generate(prompts, cfg)
    alone = engine(tiny_llama, 1).generate(prompts[::-1], cfg)[::-1]
    assert together == alone
    with_duplicates = engine(tiny_llama, 6).generate([prompts[0], prompts[0], *prompts[1:]], cfg)
    assert with_duplicates == [together[0], *together]  # seeds follow the prompt, not its position
    other_seed = engine(tiny_llama, 6).generate(prompts, GenerationConfig(**{**cfg.__dict__, "seed": 8}))
    greedy = engine(tiny_llama, 6).generate(prompts, GenerationConfig(max_new_tokens=8))
    assert other_seed != together and greedy != together


def test_beam_search_and_repetition_penalty_batch_invariant(tiny_llama):
    prompts = chat_prompts(5)
    for cfg in (GenerationConfig(max_new_tokens=8, num_beams=3), GenerationConfig(max_new_tokens=8, repetition_penalty=1.5)):
        assert engine(tiny_llama, 5).generate(prompts, cfg) == engine(tiny_llama, 1).generate(prompts, cfg)


def test_repetition_penalty_skips_left_padding():
    """transformers' processor would penalise the pad id (= eos here) in padded rows only."""
    from harness.generation.decoding import RowControl

    scores = torch.tensor([[2.0, 2.0, -1.0, 1.0], [2.0, 2.0, -1.0, 1.0]])
    ids = torch.tensor([[0, 0, 3], [1, 2, 3]])  # row 0: two pads (id 0) then token 3
    out = RowControl([2, 0], repetition_penalty=2.0)(ids, scores.clone())
    assert out[0].tolist() == [2.0, 2.0, -1.0, 0.5]  # pad id 0 untouched
    assert out[1].tolist() == [2.0, 1.0, -2.0, 0.5]


def test_ngram_block_matches_transformers_on_unpadded_rows_and_skips_padding():
    from transformers import NoRepeatNGramLogitsProcessor

    from harness.generation.decoding import RowControl

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (64, 12), generator=generator)  # a small vocabulary: many repeated n-grams
    scores = torch.randn(64, 6, generator=generator)
    for n in (1, 2, 3, 4, 13):
        expected = NoRepeatNGramLogitsProcessor(n)(ids, scores.clone())
        assert torch.equal(RowControl([0] * 64, no_repeat_ngram_size=n)(ids, scores.clone()), expected)
    assert torch.isinf(NoRepeatNGramLogitsProcessor(2)(ids, scores.clone())).any()  # the check above bans something
    # row 0 is row 1 behind two pads (id 0): "0 0" and "0 1" are pad n-grams, not the row's own
    padded = torch.tensor([[0, 0, 1, 0, 1, 0], [7, 7, 1, 0, 1, 0]]) % 6
    out = RowControl([2, 0], no_repeat_ngram_size=2)(padded, torch.zeros(2, 6))
    assert torch.isinf(out[0]).nonzero().flatten().tolist() == [1]  # only "0 1", seen after the padding
    assert torch.isinf(out[1]).nonzero().flatten().tolist() == [1]


def test_ngram_block_is_batch_invariant_and_keeps_old_cache_keys(tiny_llama):
    assert "no_repeat_ngram_size" not in GenerationConfig().key()  # entries made before the field still hit
    assert GenerationConfig(no_repeat_ngram_size=2).key()["no_repeat_ngram_size"] == 2
    with pytest.raises(UserError, match="no_repeat_ngram_size must be >= 0"):
        GenerationConfig(no_repeat_ngram_size=-1)
    tok, model, prompts = tiny_llama.tokenizer, tiny_llama.model, chat_prompts(5)
    free = engine(tiny_llama, 5).generate(prompts, GenerationConfig(max_new_tokens=16))
    greedy = GenerationConfig(max_new_tokens=16, no_repeat_ngram_size=2)
    blocked = engine(tiny_llama, 5).generate(prompts, greedy)
    assert blocked != free  # the random tiny model repeats itself without the block
    for prompt, text in zip(prompts, blocked):  # transformers' own rule, one unpadded row at a time
        context = tok(tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False).input_ids
        with torch.inference_mode():
            out = model.generate(torch.tensor([context]), max_new_tokens=16, do_sample=False, num_beams=1,
                                 no_repeat_ngram_size=2, pad_token_id=tok.pad_token_id or tok.eos_token_id)
        assert text == tok.decode(out[0, len(context):], skip_special_tokens=True).strip()
    beams = GenerationConfig(max_new_tokens=16, no_repeat_ngram_size=2, num_beams=3)
    assert engine(tiny_llama, 5).generate(prompts, beams) == engine(tiny_llama, 1).generate(prompts, beams)


def test_loglikelihood_matches_direct_computation(tiny_llama):
    tok, model = tiny_llama.tokenizer, tiny_llama.model
    prompts = chat_prompts(5)
    pairs = [(p, "i am fine thanks") for p in prompts]
    values = engine(tiny_llama, 5).loglikelihood(pairs)
    for (prompt, reply), (nll, count) in zip(pairs, values):
        context = tok(tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False).input_ids
        target = tok(reply, add_special_tokens=False).input_ids
        ids = torch.tensor([context + target])
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(ids).logits[0].double(), -1)
        expected = -sum(logprobs[len(context) - 1 + j, t].item() for j, t in enumerate(target))
        assert count == len(target)
        assert nll == pytest.approx(expected, rel=1e-4)
    with_eos = engine(tiny_llama, 2).loglikelihood(pairs[:1], add_eos=True)[0]
    assert with_eos[1] == values[0][1] + 1 and with_eos[0] > values[0][0]


def test_encoder_decoder_generation_and_scoring(tiny_t5_dir):
    from harness.checkpoints.loader import load_model

    t5 = load_model(str(tiny_t5_dir), dtype="float32", device="cpu")
    assert t5.kind == "seq2seq"
    prompts = [f"summarize : {p[1]['content']}" for p in chat_prompts(5)]
    cfg = GenerationConfig(max_new_tokens=6)
    assert engine(t5, 5).generate(prompts, cfg) == engine(t5, 1).generate(prompts, cfg)
    nll, count = engine(t5, 2).loglikelihood([(prompts[0], "fine")])[0]
    assert count >= 1 and math.isfinite(nll) and nll > 0


def test_generation_config_rejects_bad_settings():
    with pytest.raises(UserError, match="max_new_tokens"):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(UserError, match="beam search with sampling"):
        GenerationConfig(do_sample=True, num_beams=2)
    with pytest.raises(UserError, match="top_p"):
        GenerationConfig(top_p=0)
    assert not GenerationConfig(do_sample=True).cacheable
    assert "seed" not in GenerationConfig(seed=3).key()  # greedy ignores the seed: same cache entries


def test_encoder_only_model_is_refused(tmp_path):
    from transformers import BertConfig, BertModel

    from harness.checkpoints.loader import load_model
    from tiny_lm import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(str(tmp_path))
    tokenizer.save_pretrained(str(tmp_path))
    loaded = load_model(str(tmp_path), dtype="float32", device="cpu")
    assert loaded.kind == "encoder"
    gen = Generator(fingerprint=loaded.fingerprint, loader=lambda: loaded, progress=False)
    with pytest.raises(UserError, match="cannot generate"):
        gen.generate(["hello"], GenerationConfig(max_new_tokens=2))
