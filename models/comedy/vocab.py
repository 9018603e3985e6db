"""The tiny preset's tokenizer: a LLaMA-style SentencePiece model trained on the training split.

Why SentencePiece and not the project's byte-level BPE: COMEDY's checkpoints use LLaMA's
SentencePiece tokenizer (``tokenizer.model``; ``<s>`` = 1, ``</s>`` = 2, byte fallback), so a tiny
model trained with one runs the very code path of the released models, ``LlamaTokenizer`` included;
SentencePiece also keeps frequent Chinese characters and words as single pieces, where byte-level
BPE spends three bytes on a character it has not merged. Training takes well under a second.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Iterable

from harness.errors import UserError

SPECIAL = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}


def write_llama_tokenizer_files(model_file: Path, folder: Path) -> None:
    """Write ``tokenizer.model`` + the config files a released LLaMA folder holds (no pad: pad = eos)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(Path(model_file).read_bytes())
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": False,
              "model_max_length": 4096, **SPECIAL}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(SPECIAL), encoding="utf-8")


def train_sentencepiece(texts: Iterable[str], folder: Path, vocab_size: int = 2000, coverage: float = 1.0) -> None:
    """Train a byte-fallback BPE SentencePiece model on ``texts`` and write a LLaMA tokenizer folder.

    ``coverage`` < 1 leaves the rarest characters to byte fallback already in training, so the model
    learns byte pieces and held-out text with unseen characters is not scored on untrained embeddings.
    """
    import sentencepiece as spm

    lines = [line for text in texts for line in text.split("\n") if line.strip()]
    if not lines:
        raise UserError("cannot train a tokenizer: the training data holds no text")
    with tempfile.TemporaryDirectory() as scratch:
        prefix = str(Path(scratch) / "spm")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=vocab_size, model_type="bpe",
            byte_fallback=True, character_coverage=coverage, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            user_defined_symbols=["[Human]", "[AI]"], split_digits=True, hard_vocab_limit=False,
            minloglevel=2, num_threads=1)
        write_llama_tokenizer_files(Path(prefix + ".model"), folder)


def tiny_tokenizer(texts: Iterable[str], vocab_size: int = 2000, coverage: float = 1.0) -> Any:
    """Return a ``LlamaTokenizer`` trained on ``texts`` with pad = eos (as COMEDY sets it)."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as folder:
        train_sentencepiece(texts, Path(folder), vocab_size, coverage)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
