"""Helpers for the COMEDY tests: a tiny LLaMA written in the released COMEDY_7B layout, episode files."""
from __future__ import annotations

import json
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "tasks" / "samples"


def sample_texts() -> list[str]:
    """Return the bundled Dolphin sample lines (Chinese text for a tiny tokenizer)."""
    return [line for path in sorted(SAMPLES.glob("dolphin_*.jsonl")) for line in path.read_text(encoding="utf-8").splitlines()]


def write_released_layout(folder: Path, *, layers: int = 2, seed: int = 0) -> Path:
    """Write config.json + one bf16 ``pytorch_model.bin`` (a torch.save'd state dict, no safetensors) +
    ``tokenizer.model`` and its two config files, as Nuo97/COMEDY_7B ships them (systems.md §9.4)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from models.comedy.vocab import train_sentencepiece

    train_sentencepiece(sample_texts(), folder, vocab_size=1200)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=1200, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False, torch_dtype="bfloat16")
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(folder))
    config.vocab_size = vocab
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


def write_episodes(path: Path, sessions: int = 22, *, short: tuple[int, ...] = (17, 19), order: list[int] | None = None) -> Path:
    """Write an episode test file (``{episode: {session: {sub_history, username, botname}}}``).

    Session n (1-based) has five utterances; the fifth is short (<= 10 characters) for n in ``short``.
    """
    episode = {}
    for number in order or list(range(1, sessions + 1)):
        fifth = "好。" if number in short else f"林晓：第{number}次聊天真开心，我们下次再聊聊别的事情吧。"
        episode[f"s{number}"] = {"sub_history": [f"林晓：今天是第{number}次聊天。", "小暖：真好，最近怎么样？",
                                                 f"林晓：我学会了第{number}道菜。", "小暖：太厉害了！", fifth],
                                 "username": "林晓", "botname": "小暖"}
    path.write_text(json.dumps({"ep1": episode}, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
