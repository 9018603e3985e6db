"""Helpers for the training tests: a synthetic ConvAI2 writer, a tiny preset, a tiny Llama.

The synthetic dialogues follow fixed templates so a 2-layer model learns them within a few dozen
steps: "loss decreases" is then a real signal, not noise.
"""
from __future__ import annotations

import random
from pathlib import Path

from training.config import Preset, TrainConfig

HOBBIES = ["cats", "music", "hiking", "pizza", "books", "movies", "soccer", "coffee", "painting", "chess"]


def write_convai2(path: Path, dialogues: int, *, seed: int = 0, lines: int = 4) -> Path:
    """Write ``dialogues`` template dialogues in the ParlAI ConvAI2 text format; return ``path``."""
    rng = random.Random(seed)
    rows = []
    for _ in range(dialogues):
        hobby, other = rng.sample(HOBBIES, 2)
        rows += [f"1 your persona: i like {hobby}.", f"2 your persona: i do not like {other}."]
        for number in range(3, 3 + lines):
            topic = rng.choice([hobby, other])
            answer = f"yes , i love {topic} ." if topic == hobby else f"no , i do not like {topic} ."
            rows.append(f"{number} do you like {topic} ?\t{answer}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def small_preset(**train: object) -> Preset:
    """Return a preset with a 2-layer, 32-dim GPT-2 that trains in a second on CPU."""
    settings = dict(learning_rate=5e-3, epochs=2, batch_size=8, schedule="linear", warmup=0, eval_steps=10,
                    logging_steps=1, save_total_limit=3, bf16=False)
    settings.update(train)
    return Preset(name="test", description="unit-test size", train=TrainConfig(**settings),  # type: ignore[arg-type]
                  model={"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 128, "vocab_size": 300},
                  data={"max_turns": 5, "max_len": 128, "train_fraction": 0.85})



def tiny_llama(tokenizer: object, layers: int = 2) -> object:
    """Return a random Llama-style causal LM (64 dims, GQA) sized for tests."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config)


def one_thread():
    """Return a context running torch on one thread (restored afterwards): faster than two for 32-dim
    layers, and steady when other work shares the CPU (see TrainConfig.cpu_threads)."""
    from training.run import cpu_threads

    return cpu_threads(1)
