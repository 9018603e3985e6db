"""The response model: memory-enhance attention, bank updates in training only, engine hook, both checkpoint layouts."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from harness.errors import UserError
from models.magic.modeling import MemoryEnhanceModule
from tests.models.magic_helpers import bart_tokenizer, fill_banks, tiny_magic


def test_memory_attention_with_an_empty_bank_gives_zeros_not_nan():
    torch.manual_seed(0)
    module = MemoryEnhanceModule(8, 2)
    context = torch.randn(2, 5, 8)
    context_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    memory = torch.randn(2, 3, 8)
    padding = torch.tensor([[True, True, True], [False, False, True]])  # row 0: empty bank
    out = module(context, context_mask, memory, padding)
    assert not torch.isnan(out).any()
    assert torch.equal(out[0], torch.zeros(8))
    assert out[1].abs().sum() > 0
    # the plain torch attention the released code used gives NaN for the empty row
    raw, _ = module.multihead_attn(context, memory, memory, key_padding_mask=padding)
    assert torch.isnan(raw[0]).all()
    # padding of the context does not leak into the pooled vector
    changed = context.clone()
    changed[1, 3:] = 100.0
    assert torch.allclose(module(changed, context_mask, memory, padding)[1], out[1])


def _batch(tokenizer):
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([[bos, 10, 11, 12, eos], [bos, 13, 14, eos, pad]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]),
        "labels": torch.tensor([[20, 21, eos], [22, eos, -100]]),
        "strategy_ids": torch.tensor([0, 2]),
        "memory_ids": torch.tensor([[bos, 30, 31, eos], [bos, 32, eos, pad], [bos, 33, eos, pad]]),
        "memory_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 0]]),
        "memory_strategy": torch.tensor([0, 0, 2]),
    }


def test_banks_grow_in_training_only_and_the_strategy_loss_is_weighted():
    tokenizer = bart_tokenizer()
    model = tiny_magic(tokenizer)
    batch = _batch(tokenizer)
    model.eval()
    with torch.no_grad():
        eval_loss = model(**batch).loss
    assert model.bank.sizes() == [0] * 8  # evaluation reads the banks, never writes them
    model.train()
    model.config.strategy_loss_weight = 0.0
    torch.manual_seed(1)
    plain = model(**batch).loss
    assert model.bank.sizes() == [2, 0, 1, 0, 0, 0, 0, 0]
    model.bank.banks = [torch.zeros(0, 32) for _ in range(8)]
    model.config.strategy_loss_weight = 0.2
    torch.manual_seed(1)
    weighted = model(**batch).loss
    pooled = model.pool_memories(batch["memory_ids"], batch["memory_mask"])
    strategy_ce = torch.nn.functional.cross_entropy(model.strategy_cls(pooled), batch["memory_strategy"])
    assert torch.allclose(weighted, plain + 0.2 * strategy_ce, atol=1e-5)
    weighted.backward()
    assert model.strategy_encoder.layers[0].fc1.weight.grad.abs().sum() > 0  # learns through the memory
    assert torch.isfinite(eval_loss)


def test_none_strategy_masks_the_memory_position():
    tokenizer = bart_tokenizer()
    model = tiny_magic(tokenizer)
    fill_banks(model)
    batch = _batch(tokenizer)
    encoded = model.encode(batch["input_ids"], batch["attention_mask"], torch.tensor([-1, 2]))
    assert encoded.last_hidden_state.shape[1] == 6
    assert encoded.memory_mask[:, -1].tolist() == [0, 1]


def test_engine_hook_beam_search_is_batch_invariant_and_uses_the_memory(tmp_path):
    from harness.generation import GenerationConfig, Generator, TokenPrompt
    from harness.generation.cache import GenerationCache
    from models.magic.hook import StrategyMemoryHook

    tokenizer = bart_tokenizer()
    model = tiny_magic(tokenizer, motivation="encoded")
    fill_banks(model, sizes=(3, 2, 5, 1, 4, 2, 4, 1))
    model.bank.banks = [b * 5 for b in model.bank.banks]
    hook = StrategyMemoryHook("test", tokenizer.pad_token_id)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    prompts = [TokenPrompt([bos, *range(10, 13 + i), eos], encoder_extra={"strategy": i % 8 - 1, "motivation": [bos, 40 + i, eos]})
               for i in range(6)]
    cfg = GenerationConfig(max_new_tokens=6, num_beams=3)

    def engine(rows, cache=None):
        return Generator(model, tokenizer, fingerprint="magic-test", batch_size=rows, progress=False, cache=cache)

    together = engine(6).generate(prompts, cfg, encoder_hook=hook)
    assert together == engine(1).generate(prompts, cfg, encoder_hook=hook)
    other = [TokenPrompt(p.input_ids, encoder_extra={**p.encoder_extra, "strategy": (p.encoder_extra["strategy"] + 3) % 8})
             for p in prompts]
    reply = TokenPrompt([20, 21, tokenizer.eos_token_id])
    scores = engine(6).loglikelihood([(p, reply) for p in prompts], encoder_hook=hook)
    alone = engine(1).loglikelihood([(p, reply) for p in prompts], encoder_hook=hook)
    assert [s[0] for s in scores] == pytest.approx([s[0] for s in alone], abs=1e-4)
    moved = engine(6).loglikelihood([(p, reply) for p in other], encoder_hook=hook)
    assert all(abs(a[0] - b[0]) > 1e-6 for a, b in zip(scores, moved))  # the memory reaches the decoder
    cache = GenerationCache(tmp_path / "cache.sqlite")
    cached = engine(6, cache)
    cached.generate(prompts, cfg, encoder_hook=hook)
    cached.generate(prompts, cfg, encoder_hook=hook)
    assert cached.stats["generate_computed"] == 6


def test_released_layout_loads_with_weights_only_and_refuses_pickles(tmp_path):
    from models.magic.checkpoint import load_response_model

    tokenizer = bart_tokenizer()
    model = tiny_magic(tokenizer)
    fill_banks(model)
    tokenizer.save_pretrained(str(tmp_path))
    torch.save(model.state_dict(), tmp_path / "dialogue_model.pth")
    with pytest.raises(UserError, match="memory_bank.pth: strategy bank missing"):
        load_response_model(tmp_path, heads=2)
    torch.save(list(model.bank.banks), tmp_path / "memory_bank.pth")
    loaded, _ = load_response_model(tmp_path, heads=2)
    assert loaded.config.d_model == 32 and loaded.config.encoder_layers == 1
    assert all(torch.equal(a, b) for a, b in zip(loaded.bank.banks, model.bank.banks))
    batch = _batch(tokenizer)
    batch.pop("memory_ids"), batch.pop("memory_mask"), batch.pop("memory_strategy")
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(**batch).logits, model(**batch).logits, atol=1e-6)

    class Payload:  # anything that is not a tensor container must never be unpickled
        def __reduce__(self):
            return (print, ("executed",))

    with open(tmp_path / "dialogue_model.pth", "wb") as handle:
        pickle.dump({"weights": Payload()}, handle)
    with pytest.raises(UserError, match="pickled Python objects"):
        load_response_model(tmp_path, heads=2)


def test_our_layout_round_trips_and_needs_its_bank(tmp_path):
    from models.magic.bank import BANK_FILE
    from models.magic.checkpoint import load_response_model

    tokenizer = bart_tokenizer()
    model = tiny_magic(tokenizer)
    fill_banks(model)
    model.save_pretrained(str(tmp_path))
    tokenizer.save_pretrained(str(tmp_path))
    loaded, _ = load_response_model(tmp_path)
    assert loaded.bank.sizes() == model.bank.sizes()
    (tmp_path / BANK_FILE).unlink()
    with pytest.raises(UserError, match="strategy bank missing"):
        load_response_model(tmp_path)


def test_system_reads_inputs_with_contractions_expanded_unless_switched_off(tmp_path):
    from harness.records import BOT, USER, Example, Turn
    from models.magic.system import MagicSystem
    from tasks.esconv import ESConvStrategyTask

    tokenizer = bart_tokenizer()
    model = tiny_magic(tokenizer)
    model.save_pretrained(str(tmp_path))
    tokenizer.save_pretrained(str(tmp_path))
    example = Example(id="d:3", task="esconv_strategy", dialogue_id="d",
                      context=(Turn(USER, "I ' m sad ."), Turn(BOT, "Don ' t worry .", strategy="Affirmation and Reassurance"),
                               Turn(USER, "It ' s hard .")),
                      references=("I ' m here .",), label="Greeting",
                      inputs={"situation": "I can ' t sleep", "response_memory": ("Don ' t worry .",),
                              "strategy_memory": ("Affirmation and Reassurance",)})
    task = ESConvStrategyTask(protocol="last")
    system = MagicSystem(task, model=str(tmp_path), strategy="gold", no_cache=True, progress=False)
    seen = system.model_view(example)
    assert [t.text for t in seen.context] == ["I am sad .", "Do not worry .", "It is hard ."]
    assert seen.inputs["situation"] == "I can not sleep" and seen.inputs["response_memory"] == ("Do not worry .",)
    assert seen.references == ("I am here .",) and seen.context[1].strategy == "Affirmation and Reassurance"
    system.close()
    raw = MagicSystem(task, model=str(tmp_path), strategy="gold", no_cache=True, progress=False,
                      expand_contractions="false")
    assert raw.model_view(example) == example
    raw.close()


def test_beam_defaults_come_from_the_checkpoint_and_reach_the_beam_search(tmp_path):
    """magic.json's standard_decoding sets the defaults, --set wins, and the released search refuses them."""
    from harness.records import BOT, USER, Example, Turn
    from models.magic.system import MagicSystem
    from tasks.esconv import ESConvStrategyTask

    tokenizer = bart_tokenizer()
    tiny_magic(tokenizer).save_pretrained(str(tmp_path))
    tokenizer.save_pretrained(str(tmp_path))
    task = ESConvStrategyTask(protocol="last")
    example = Example(id="d:1", task="esconv_strategy", dialogue_id="d", context=(Turn(USER, "I feel low today ."),),
                      references=("I am here .",), label="Question", inputs={"response_memory": (), "strategy_memory": ()})

    def run(**options):
        options = {"max_new_tokens": 24, **options}
        system = MagicSystem(task, model=str(tmp_path), strategy="gold", no_cache=True, progress=False, **options)
        text, info = system.respond([example])[0].text, system.info()
        system.close()
        return text, (info["length_penalty"], info["no_repeat_ngram_size"])

    plain, settings = run()
    assert settings == (1.0, 0)  # no magic.json: MAGIC's README settings
    (tmp_path / "magic.json").write_text(json.dumps({"standard_decoding": {"length_penalty": 1.3,
                                                                           "no_repeat_ngram_size": 1}}))
    blocked, settings = run()
    assert settings == (1.3, 1) and blocked != plain  # a random model repeats tokens; the block stops it
    assert run(length_penalty="1.0", no_repeat_ngram_size="0") == (plain, (1.0, 0))
    assert run(decoding="released", max_new_tokens=4)[1] == (1.0, 0)  # the released search has no such terms
    with pytest.raises(UserError, match="no_repeat_ngram_size applies to decoding=standard only"):
        MagicSystem(task, model=str(tmp_path), strategy="gold", decoding="released", no_repeat_ngram_size="2")
    with pytest.raises(UserError, match="option no_repeat_ngram_size: must be at least 0"):
        MagicSystem(task, model=str(tmp_path), strategy="gold", no_repeat_ngram_size="-1")
