"""Tiny random models saved to a folder, for tests that need a real transformers model in milliseconds."""
from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = [
    "hello how are you today ? i am fine thanks , just got back from work .",
    "i love to read books and go hiking with my two dogs on the weekend .",
    "what do you do for a living ? i am a teacher at a small school in town .",
    "my favorite food is pizza , and i also like sushi and tacos a lot .",
    "do you have any pets ? yes , a cat named luna and a very old parrot .",
] * 4

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|endoftext|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer():
    """Return a byte-level BPE tokenizer (pad = eos) with a chat template."""
    from training.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(CORPUS, vocab_size=300, chat_template=CHAT_TEMPLATE)


def save_tiny_llama(folder: Path, *, seed: int = 0, init_range: float = 0.3, layers: int = 2,
                    hidden: int = 64) -> Path:
    """Save a random Llama-style causal LM (GQA, RoPE, tied embeddings) and its tokenizer to ``folder``.

    ``init_range`` well above the usual 0.02 gives peaked next-token distributions like a trained
    model's; 0.02 gives near-uniform ones full of near-ties.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, initializer_range=init_range, tie_word_embeddings=True,
                         bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    return _save(lambda: LlamaForCausalLM(config), tokenizer, folder, seed)


def save_tiny_t5(folder: Path, *, seed: int = 0) -> Path:
    """Save a random T5-style encoder-decoder and a tokenizer (pad 0 distinct from eos)."""
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = tiny_tokenizer()
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    config = T5Config(vocab_size=len(tokenizer), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                      decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, initializer_factor=3.0)
    return _save(lambda: T5ForConditionalGeneration(config), tokenizer, folder, seed)


def _save(build, tokenizer, folder: Path, seed: int) -> Path:
    import torch

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    build().save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def save_lora_adapter(base_dir: Path, out: Path, seed: int = 0) -> Path:
    """Save a LoRA adapter for ``base_dir`` whose B matrices are non-zero (so it changes outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(seed)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    peft_model.save_pretrained(str(out))
    return out


def chat_prompts(n: int) -> list[list[dict[str, str]]]:
    """Return ``n`` chat prompts of varied lengths (so batches need padding)."""
    prompts = []
    for i in range(n):
        words = CORPUS[i % 5].split()
        content = " ".join(words[: 2 + (i * 7) % len(words)])
        prompts.append([{"role": "system", "content": "be brief"}, {"role": "user", "content": content}])
    return prompts


# --- fixtures (imported by the conftest.py of tests/generation and tests/models) ---
@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $DIALBENCH_CACHE at a fresh folder so tests never share or pollute a user's cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DIALBENCH_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama with peaked (trained-like) next-token distributions."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def flat_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama at the usual 0.02 init: near-uniform distributions, near-ties everywhere."""
    return save_tiny_llama(tmp_path_factory.mktemp("flat-llama"), init_range=0.02, seed=1)


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5-style encoder-decoder."""
    return save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir: Path):
    """The tiny Llama loaded through harness.checkpoints.loader (float32, CPU)."""
    from harness.checkpoints.loader import load_model

    return load_model(str(tiny_llama_dir), dtype="float32", device="cpu")

