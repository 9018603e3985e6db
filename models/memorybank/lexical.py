"""BM25 lexical scoring over words (English) or character uni+bigrams (Chinese).

Hand-written because no maintained BM25 package is installed here and the scorer is a few vectorised
lines over a SciPy sparse matrix. Chinese is written without spaces and no Chinese embedding model is
embedded, so Chinese is scored on characters and character bigrams, which match Chinese words
without a segmenter. Facts are stated, not asked: terms inside an interrogative sentence (one ending
in "?"/"？") count ``question_weight`` (default 0.2) of a statement's, so the turn where the AI asks
"which films do you like?" does not outrank the turn where the user says which.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")
_STOP_EN = frozenset(
    "a an the i me my you your we our he she it they them is am are was were be been do did does have has had "
    "to of in on at for with and or but so that this what which who how when where why can could would will "
    "about any some there their its ai user".split())


def _stem(word: str) -> str:
    """Return a crude English stem (plural and -ing/-ed endings) so 'recommended' meets 'recommend'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str, language: str) -> list[str]:
    """Return the lexical terms of ``text``: CJK characters and bigrams (zh), stemmed content words (en)."""
    if language == "zh":
        chars = [c for c in text if _CJK.match(c) or c.isalnum()]
        return chars + [a + b for a, b in zip(chars, chars[1:])]
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP_EN]


def weighted_terms(text: str, language: str, question_weight: float) -> dict[str, float]:
    """Return term frequencies with terms of interrogative sentences down-weighted."""
    counts: dict[str, float] = {}
    for sentence in _SENTENCE.findall(text) or [text]:
        weight = question_weight if sentence.rstrip().endswith(("?", "？")) else 1.0
        for term in terms(sentence, language):
            counts[term] = counts.get(term, 0.0) + weight
    return counts


class BM25:
    """Okapi BM25 (k1, b) over a fixed document list; ``scores(query)`` returns one score per document."""

    def __init__(self, documents: Sequence[str], language: str, *, k1: float = 1.2, b: float = 0.75,
                 question_weight: float = 0.2) -> None:
        import scipy.sparse as sparse

        self.language = language
        self.vocabulary: dict[str, int] = {}
        rows, cols, values = [], [], []
        for row, text in enumerate(documents):
            for term, count in weighted_terms(text, language, question_weight).items():
                rows.append(row)
                cols.append(self.vocabulary.setdefault(term, len(self.vocabulary)))
                values.append(count)
        n_docs = len(documents)
        counts = sparse.csr_matrix((values, (rows, cols)), shape=(n_docs, max(1, len(self.vocabulary))))
        frequency = np.diff(counts.tocsc().indptr)
        self.idf = np.log(1.0 + (n_docs - frequency + 0.5) / (frequency + 0.5))
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()) if n_docs else 1.0, 1e-9))
        owner = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
        counts.data = counts.data * (k1 + 1) / (counts.data + norm[owner])
        self.weights = counts.tocsc()

    def scores(self, query: str) -> np.ndarray:
        """Return the BM25 score of every document for ``query`` (query terms counted once)."""
        columns = sorted({self.vocabulary[t] for t in terms(query, self.language) if t in self.vocabulary})
        if not columns:
            return np.zeros(self.weights.shape[0])
        return np.asarray(self.weights[:, columns] @ self.idf[columns]).ravel()
