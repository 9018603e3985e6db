"""Text normalisers and tokenisers shared by the metrics; each is named so it can enter a signature.

A published number depends on how text was cut, cased and split, so every choice here is a named
setting (``Tokenizer.kind``, ``lowercase``, hypothesis post-processing) rather than a hidden step.
"""
from __future__ import annotations

import re
import string
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

TOKENIZER_KINDS = ("nltk", "nltk-line", "whitespace", "space", "char", "char-nopunct", "parlai")


@lru_cache(maxsize=1)
def _nltk_tokenizers():
    # Untrained Punkt needs no data file (punkt_tab cannot be downloaded here); for dialogue text it
    # splits exactly where the English model does except after abbreviations such as "mr.".
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer(), NLTKWordTokenizer()


NLTK_PIECE_CHARS = 20_000
"""Longest text given to nltk in one call. nltk runs every regex under a 5-second wall-clock limit
(``nltk.redos``) and raises TimeoutError beyond it, which a multi-megabyte utterance reaches; pieces
this long take milliseconds, and dialogue utterances are far shorter, so their tokens are unchanged."""

NLTK_MAX_CHARS = 200_000
"""Longest text tokenized with nltk at all (about a second on one core): beyond it (a degenerate
generation, a corrupt data line) only the first this many characters are scored, with a warning,
instead of the scoring running for an hour or aborting."""

_warned_long = False


def nltk_tokens(text: str, split_sentences: bool = True) -> list[str]:
    """Return ``nltk.word_tokenize(text)`` tokens: Punkt sentences, then the Treebank word tokenizer.

    With ``split_sentences=False`` this is ``word_tokenize(text, preserve_line=True)``. A text longer
    than ``NLTK_PIECE_CHARS`` is tokenized piece by piece, cut at a sentence end or a space, and one
    longer than ``NLTK_MAX_CHARS`` is cut there first, each with a warning (tokens at the cuts may
    differ from one call's); a piece that still hits nltk's time limit falls back to whitespace
    tokens, with a warning, rather than aborting the whole scoring.
    """
    global _warned_long
    if len(text) <= NLTK_PIECE_CHARS:
        return _nltk_piece(text, split_sentences)
    if not _warned_long:
        _warned_long = True
        capped = f"; only its first {NLTK_MAX_CHARS:,} are scored" if len(text) > NLTK_MAX_CHARS else ""
        _warn(f"a text of {len(text):,} characters is tokenized for nltk in pieces of at most "
              f"{NLTK_PIECE_CHARS:,} characters (nltk's regex time limit){capped}; tokens at the cuts may differ")
    if len(text) > NLTK_MAX_CHARS:
        space = text.rfind(" ", 0, NLTK_MAX_CHARS)
        text = text[: space if space > 0 else NLTK_MAX_CHARS]
    return [token for piece in _pieces(text, NLTK_PIECE_CHARS) for token in _nltk_piece(piece, split_sentences)]


def _nltk_piece(text: str, split_sentences: bool) -> list[str]:
    sentences, words = _nltk_tokenizers()
    try:
        parts = sentences.tokenize(text) if split_sentences else [text]
        return [token for part in parts for token in words.tokenize(part)]
    except TimeoutError:
        _warn(f"nltk timed out on a text of {len(text):,} characters; using whitespace tokens for it")
        return text.split()


def _pieces(text: str, size: int) -> list[str]:
    """Return ``text`` cut into pieces of at most ``size`` characters, at a sentence end or a space
    where there is one (a run of ``size`` characters without a space is cut where it stands)."""
    pieces, start = [], 0
    while len(text) - start > size:
        end = start + size
        cut = max(text.rfind(". ", start, end), text.rfind("? ", start, end), text.rfind("! ", start, end))
        if cut <= start:
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
        cut = end if cut <= start else cut + 1
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def _warn(message: str) -> None:
    print(f"dialbench: warning: {message}", file=sys.stderr, flush=True)


_CJK = (
    "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
)
_CHAR_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|[^\s\w{_CJK}]|_", re.UNICODE)


def char_tokens(text: str) -> list[str]:
    """Return character-level tokens for Chinese: every CJK character and CJK punctuation mark is a token,
    runs of Latin letters/digits stay one token, other punctuation marks are single tokens, spaces vanish.

    This is the usual choice of Chinese dialogue papers (BLEU/ROUGE/Distinct on characters) and agrees
    with sacreBLEU's ``zh`` tokenizer on CJK characters.
    """
    return _CHAR_TOKEN.findall(text)


_PARLAI_PUNCT = re.compile("[%s]" % re.escape(string.punctuation))
_PARLAI_ARTICLES = re.compile(r"\b(a|an|the)\b")


def parlai_normalize(text: str) -> str:
    """Return ParlAI's ``normalize_answer`` (parlai/core/metrics.py): lowercase, drop punctuation and
    a/an/the, collapse whitespace."""
    text = text.lower()
    text = _PARLAI_PUNCT.sub(" ", text)
    text = _PARLAI_ARTICLES.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Tokenizer:
    """A named tokenisation recipe.

    ``kind``: ``nltk`` (nltk.word_tokenize as nlg-eval derivatives call it), ``nltk-line``
    (word_tokenize with preserve_line=True), ``whitespace`` (str.split), ``space`` (str.split(" "), SPT's
    script), ``char`` (Chinese
    characters, see :func:`char_tokens`), ``char-nopunct`` (the same without punctuation and
    symbols, for F1), ``parlai`` (normalize_answer then split).
    ``zh_kind`` replaces ``kind`` when the language is Chinese (``None`` keeps ``kind``).
    """

    kind: str = "whitespace"
    lowercase: bool = False
    zh_kind: str | None = "char"

    def resolve(self, language: str) -> "Tokenizer":
        """Return the tokenizer actually used for ``language``."""
        if language == "zh" and self.zh_kind and self.zh_kind != self.kind:
            return Tokenizer(self.zh_kind, self.lowercase, None)
        return self

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.kind == "nltk":
            return nltk_tokens(text)
        if self.kind == "nltk-line":
            return nltk_tokens(text, split_sentences=False)
        if self.kind == "whitespace":
            return text.split()
        if self.kind == "space":  # str.split(" "), as SPT's script: "" and "a  b" yield empty tokens
            return text.split(" ")
        if self.kind == "char":
            return char_tokens(text)
        if self.kind == "char-nopunct":
            return [t for t in char_tokens(text) if not unicodedata.category(t[0]).startswith(("P", "S"))]
        if self.kind == "parlai":
            return parlai_normalize(text).split()
        raise ValueError(f"unknown tokenizer kind '{self.kind}' (choices: {', '.join(TOKENIZER_KINDS)})")

    def describe(self) -> str:
        """Return the signature fragment, e.g. ``nltk+lc``."""
        return self.kind + ("+lc" if self.lowercase else "")


_SPT_CUT = re.compile(r"R:|Q:|Summary:|\n|:")


def spt_cut(text: str) -> str:
    """Return ``text`` cut at the first ``R:``, ``Q:``, ``Summary:``, newline or ``:`` (SPT inference), stripped."""
    return _SPT_CUT.split(text, maxsplit=1)[0].strip()


_MAGIC_PUNCT = re.compile(r"(\w)([.,!?;:])")


def magic_postprocess(text: str) -> str:
    """Return MAGIC's hypothesis clean-up (test_evaluation.py): drop double quotes, collapse repeated
    '.' and '!', then put a space before punctuation that follows a word character."""
    text = text.replace('"', "")
    text = re.sub(r"\.{2,}", ".", text)
    text = re.sub(r"!{2,}", "!", text)
    return _MAGIC_PUNCT.sub(r"\1 \2", text)


def one_line(text: str) -> str:
    """Return ``text`` with every line break, tab and control character turned into a single space."""
    cleaned = "".join(" " if unicodedata.category(ch).startswith("C") or ch.isspace() else ch for ch in text)
    return " ".join(cleaned.split())
