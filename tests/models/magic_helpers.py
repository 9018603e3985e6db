"""Helpers for the MAGIC tests: a synthetic MultiESC file, a BPE tokenizer with BART's specials, a tiny model."""
from __future__ import annotations

import json
import random
from pathlib import Path

STRATEGY_REPLIES = {
    "Question": "how long have you felt this way ?",
    "Reflection of feelings": "that sounds really hard for you .",
    "Providing Suggestions or Information": "maybe you could talk to a friend about it .",
    "Affirmation and Reassurance": "you are doing the best you can .",
    "Greeting": "hello , how are you today ?",
}
PROBLEMS = ["my job", "my exams", "my friend", "my family", "the pandemic"]


def write_multiesc(path: Path, dialogues: int, *, seed: int = 0, turns: int = 8) -> Path:
    """Write template dialogues in MultiESC's JSON-lines format (alternating, starting with the seeker)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(dialogues):
        problem = rng.choice(PROBLEMS)
        dialog = []
        for index in range(turns):
            if index % 2 == 0:
                dialog.append({"text": f"i feel bad about {problem} .", "speaker": "usr", "vad": [0, 0, 0],
                               "cause": None, "feedback": None})
            else:
                strategy = rng.choice(sorted(STRATEGY_REPLIES))
                dialog.append({"text": STRATEGY_REPLIES[strategy], "speaker": "sys", "strategy": strategy,
                               "all_strategy": [strategy]})
        lines.append(json.dumps({"emotion_type": "sadness", "problem_type": "job", "situation": f"worried about {problem}",
                                 "init_intensity": "4", "final_intensity": "2", "dialog": dialog}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bart_tokenizer(texts: list[str] | None = None, vocab_size: int = 300):
    """Return a byte-level BPE with <s>, </s>, <pad> (BART's specials) trained on ``texts``."""
    from training.tokenizer import train_bpe_tokenizer

    texts = texts or [f"i feel bad about {p} ." for p in PROBLEMS] + list(STRATEGY_REPLIES.values())
    tokenizer = train_bpe_tokenizer(texts, vocab_size=vocab_size, eos="</s>", special_tokens=["<s>", "<pad>"])
    tokenizer.bos_token = "<s>"
    tokenizer.pad_token = "<pad>"
    return tokenizer


def tiny_magic(tokenizer, *, motivation: str = "unused", seed: int = 0, capacity: int = 128):
    """Return a random 1+1-layer, 32-dim MAGIC response model."""
    import torch

    from models.magic.modeling import MagicConfig, MagicResponseModel

    torch.manual_seed(seed)
    config = MagicConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                         max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         decoder_start_token_id=tokenizer.bos_token_id, forced_eos_token_id=None,
                         motivation=motivation, bank_capacity=capacity, dropout=0.0)
    return MagicResponseModel(config).eval()


def fill_banks(model, seed: int = 0, sizes=(3, 0, 5, 1, 0, 2, 4, 0)) -> None:
    """Put random vectors into the banks (some left empty)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    model.bank.banks = [torch.randn(n, model.config.d_model, generator=generator) for n in sizes]
