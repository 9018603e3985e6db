"""Tiny random-init bases for the SPT tests (2 layers, 64 dims; seconds on one CPU thread)."""
from __future__ import annotations

import torch


def tiny_base(kind: str = "llama", vocab: int = 120, seed: int = 0):
    """Return a random-init causal LM of ``kind`` (llama or opt) in eval mode."""
    from transformers import AutoModelForCausalLM, LlamaConfig, OPTConfig

    torch.manual_seed(seed)
    if kind == "opt":
        config = OPTConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128,
                           max_position_embeddings=256, word_embed_proj_dim=64, pad_token_id=1, bos_token_id=2,
                           eos_token_id=2, dropout=0.0, attention_dropout=0.0)
    else:
        config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                             pad_token_id=0, bos_token_id=1, eos_token_id=2)
    config._attn_implementation = "eager"
    return AutoModelForCausalLM.from_config(config).eval()


TEXTS = ["i like to swim in the sea", "my dog is named max", "what do you do for a living", "i am a chef"] * 5


def tiny_tokenizer():
    """Return a byte-level BPE tokenizer trained on a few sentences (vocabulary of 120)."""
    from training.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(TEXTS, vocab_size=120)


def tiny_spt(kind: str = "llama", **settings):
    """Return an SPTModel with K=2 prompts of 3 virtual tokens on a tiny base (overrides in ``settings``)."""
    from models.spt.config import SPTConfig
    from models.spt.model import SPTModel

    base = tiny_base(kind)
    config = SPTConfig(base="base", **{"num_prompts": 2, "num_virtual_tokens": 3, **settings})
    torch.manual_seed(1)
    model = SPTModel(base, config, pad_id=base.config.pad_token_id)
    with torch.no_grad():
        model.prompts.mul_(0.1)
    return model.eval()
