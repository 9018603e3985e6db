"""Tokenizers trained by the project on the training data, for the ``tiny`` presets.

Tiny presets start from random weights, so they need no pretrained vocabulary; a byte-level BPE
(GPT-2's scheme: any text round-trips, nothing is ever unknown) trained on the training split takes
a fraction of a second and keeps the model small. The result is a regular transformers tokenizer:
``save_pretrained``/``AutoTokenizer.from_pretrained`` work and it can carry a chat template.
"""
from __future__ import annotations

from typing import Iterable

from harness.errors import UserError

EOS = "<|endoftext|>"
"""GPT-2's end-of-text token, reused as eos and pad so tiny and paper presets share the format."""


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 2000, *, eos: str = EOS,
                        special_tokens: Iterable[str] = (), chat_template: str | None = None):
    """Return a byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``.

    ``eos`` doubles as the pad token (masked out of every loss by the collators); extra
    ``special_tokens`` are registered as additional special tokens (never split, skipped when
    decoding with ``skip_special_tokens``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [text for text in texts if text]
    if not texts:
        raise UserError("cannot train a tokenizer: the training data holds no text")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[eos], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=eos, pad_token=eos)
    extra = list(special_tokens)
    if extra:
        tokenizer.add_special_tokens({"additional_special_tokens": extra})
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer
