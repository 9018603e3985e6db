"""The strategy model's shared-header loss equals the plain causal-LM loss on the full prompts."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _tiny_llama_with_lora():
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.adapters import AdapterSpec, apply_adapter

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = LlamaForCausalLM(config)
    model = apply_adapter(model, AdapterSpec(r=4, alpha=8, dropout=0.0, target_modules=("q_proj", "v_proj")),
                          layers=[1, 2])
    for name, param in model.named_parameters():  # LoRA B starts at zero: make the adapters matter
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.2)
    return model


def test_shared_header_loss_and_gradients_match_the_full_prompt_loss():
    from models.magic.shared_header import SharedHeaderCollator, shared_header_loss
    from training.collate import PaddingCollator, encode_segments

    model = _tiny_llama_with_lora()
    header = [5, 17, 23, 42, 8, 9, 11]
    rows = [([30, 31, 32], [60, 61, 2]), ([33, 34, 35, 36, 37], [62, 2]), ([38], [63, 64, 65, 2])]
    shared = [encode_segments([(clip, False), (target, True)]) for clip, target in rows]
    full = [encode_segments([(header + clip, False), (target, True)]) for clip, target in rows]

    batch = SharedHeaderCollator(pad_id=0, header=tuple(header))(shared)
    loss = shared_header_loss(model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()

    plain = PaddingCollator(pad_id=0)(full)
    reference = model(**plain).loss
    reference.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert any("layers.1" in n for n in grads)  # the header's adapted layers get gradient too
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert torch.allclose(grads[name], param.grad, atol=1e-6, rtol=1e-4), name


def test_records_with_shared_header_hold_only_clip_and_target_and_check_the_boundary():
    from harness.errors import UserError
    from harness.records import BOT, USER, Example, Turn
    from models.magic.prompt import HEADER, build_prompt
    from models.magic.strategy_recipe import header_ids, strategy_records
    from tests.models.magic_helpers import bart_tokenizer

    tokenizer = bart_tokenizer()
    context = (Turn(USER, "I lost my job ."), Turn(BOT, "That sounds hard .", strategy="Reflection of feelings"),
               Turn(USER, "Thank you , bye ."))
    example = Example(id="d:3", task="esconv_strategy", dialogue_id="d", context=context, references=("Bye !",),
                      label="Greeting", inputs={})
    header = header_ids(tokenizer)
    [row] = strategy_records(tokenizer, [example], None, 4096, None, header)
    full = tokenizer(build_prompt(context))["input_ids"]
    if full[:len(header)] != header:
        with pytest.raises(UserError):
            strategy_records(tokenizer, [example], None, 4096, None, header)
        return
    assert header + row["input_ids"][:len(full) - len(header)] == full
    assert HEADER not in tokenizer.decode(row["input_ids"])


def test_frozen_states_loss_and_gradients_match_the_shared_header_loss():
    """Lower layers run once (their states cached); the top adapted layers give the same loss and grads."""
    from models.magic.frozen_states import (ROW_KEY, FrozenStatesCollator, first_trainable_layer, frozen_states,
                                            top_layers_loss)
    from models.magic.shared_header import SharedHeaderCollator, shared_header_loss
    from training.collate import encode_segments

    model = _tiny_llama_with_lora()
    assert first_trainable_layer(model) == 1
    header = [5, 17, 23, 42, 8, 9, 11]
    rows = [encode_segments([(clip, False), (target, True)]) for clip, target in
            [([30, 31, 32], [60, 61, 2]), ([33, 34, 35, 36, 37], [62, 2]), ([38], [63, 64, 65, 2])]]
    header_states, states = frozen_states(model, header, rows, start=1, batch_size=2)
    assert [len(s) for s in states] == [len(r["input_ids"]) for r in rows]

    collator = FrozenStatesCollator(pad_id=0, header=tuple(header), header_states=header_states, states=states)
    batch = collator([{**row, ROW_KEY: [i]} for i, row in enumerate(rows)])
    loss = top_layers_loss(model, batch, start=1)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()

    reference = shared_header_loss(model, SharedHeaderCollator(pad_id=0, header=tuple(header))(rows))
    reference.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert torch.allclose(grads[name], param.grad, atol=1e-6, rtol=1e-4), name
