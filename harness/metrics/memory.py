"""Automatic stand-ins for memory evaluation (MemoryBank probes, Dolphin/COMEDY memory summaries).

The papers used human judges; these metrics check what can be checked against gold annotations:
whether the system retrieved the gold evidence, whether its answer contains the gold keywords, and
whether a generated memory keeps the facts of the reference memory.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np

from harness.metrics.base import Batch, MeanMetric
from harness.metrics.text import char_tokens


def _squash(text: str) -> str:
    """Return lowercase text without spaces or punctuation, for containment checks."""
    return "".join(ch for ch in text.lower() if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


class EvidenceRecall(MeanMetric):
    """``evidence_recall@k``: share of gold evidence ids (``Example.meta["evidence"]``, e.g.
    ``2023-05-01#3``) among the first k ids of ``Response.retrieved``; mean over questions that have
    gold evidence (others get weight 0). Ids must match exactly: a daily summary id does not count
    for the exchanges it summarises."""

    needs_references = False

    def __init__(self, ks=(1, 3, 5)) -> None:
        self.ks = tuple(ks)
        self.keys = tuple(f"evidence_recall@{k}" for k in self.ks)

    def not_applicable(self, batch: Batch) -> str | None:
        if batch.examples is None:
            return "no gold evidence (plain text scoring)"
        if not any(e.meta.get("evidence") for e in batch.examples):
            return "no gold evidence (Example.meta['evidence'])"
        if not any(r.retrieved for r in batch.responses):
            if any(r.meta.get("excerpt") is not None for r in batch.responses):
                return ("the system chose no memory items: it answered from the task's memory excerpt (the task's "
                        "word-overlap selection), so there is no system retrieval to score")
            return "system reports no retrieved memory ids"
        return None

    def values(self, batch: Batch):
        out = np.zeros((len(batch), len(self.ks)))
        weights = np.zeros(len(batch))
        for i, (e, r) in enumerate(zip(batch.examples, batch.responses)):
            gold = set(e.meta.get("evidence") or ())
            if not gold:
                continue
            weights[i] = 1.0
            for j, k in enumerate(self.ks):
                out[i, j] = len(gold & set(r.retrieved[:k])) / len(gold)
        return out, weights

    def describe(self, language: str = "en") -> str:
        return f"evidence:recall@{','.join(map(str, self.ks))}-exact-id"


class KeywordRecall(MeanMetric):
    """``keyword_recall``: share of gold keywords (``Example.meta["keywords"]``) contained in the
    answer after lowercasing and removing spaces and punctuation (works for Chinese and English);
    mean over questions with keywords."""

    needs_references = False

    def __init__(self, key: str = "keyword_recall") -> None:
        self.keys = (key,)

    def not_applicable(self, batch: Batch) -> str | None:
        if batch.examples is None or not any(e.meta.get("keywords") for e in batch.examples):
            return "no gold keywords (Example.meta['keywords'])"
        return None

    def values(self, batch: Batch):
        out, weights = np.zeros(len(batch)), np.zeros(len(batch))
        for i, (e, hyp) in enumerate(zip(batch.examples, batch.hypotheses)):
            keywords = [_squash(k) for k in (e.meta.get("keywords") or ()) if _squash(k)]
            if keywords:
                text = _squash(hyp)
                out[i] = sum(k in text for k in keywords) / len(keywords)
                weights[i] = 1.0
        return out, weights

    def describe(self, language: str = "en") -> str:
        return "keywords:recall-substring-lc-nopunct"


_ITEM_SPLIT = re.compile(r"[|｜【】\n]")


def memory_items(reference: str) -> list[str]:
    """Return the items of a reference memory: split at ``|``/``｜``, ``【``/``】`` and newlines, stripped,
    empty pieces dropped (COMEDY memories list facts as ``【...】`` groups and/or ``|``-separated)."""
    return [item.strip(" ：:;；,，。") for item in _ITEM_SPLIT.split(reference) if item.strip(" ：:;；,，。")]


def _content_units(text: str, language: str) -> set:
    """Return an item's key content: Chinese character bigrams (single characters for one-character
    items), English lowercase word tokens; punctuation never counts."""
    if language == "zh":
        chars = [c for c in char_tokens(text.lower()) if not unicodedata.category(c[0]).startswith("P")]
        return set(zip(chars, chars[1:])) if len(chars) > 1 else set(chars)
    return {w for w in re.findall(r"[^\W_]+", text.lower())}


class FactRecall(MeanMetric):
    """``fact_recall``: share of reference memory items whose key content appears in the output.

    An item *appears* when at least ``threshold`` (default 0.5) of its content units (see
    :func:`_content_units`) occur in the output's units, or its squashed text is a substring of the
    squashed output. Corpus value: recalled items / all items (micro average), so statistics are
    (recalled, items). The first reference of each example is the reference memory.
    """

    needs_references = True

    def __init__(self, threshold: float = 0.5, key: str = "fact_recall") -> None:
        self.threshold = threshold
        self.keys = (key,)

    def values(self, batch: Batch):
        out, weights = np.zeros(len(batch)), np.zeros(len(batch))
        for i, (hyp, refs) in enumerate(zip(batch.hypotheses, batch.references)):
            items = memory_items(refs[0])
            if not items:
                continue
            hyp_units, hyp_flat = _content_units(hyp, batch.language), _squash(hyp)
            recalled = 0
            for item in items:
                units = _content_units(item, batch.language)
                hit = bool(units) and len(units & hyp_units) / len(units) >= self.threshold
                flat = _squash(item)
                recalled += bool(hit or (flat and flat in hyp_flat))
            out[i], weights[i] = recalled / len(items), len(items)
        return out, weights

    def describe(self, language: str = "en") -> str:
        units = "char-bigrams" if language == "zh" else "words"
        return f"facts:recall-items-split:bar+brackets-units:{units}-thr{self.threshold}-micro"
