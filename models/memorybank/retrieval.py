"""Memory retrieval over one user's store: the released LangChain path and dialbench's hybrid.

``released`` (memory_retrieval/local_doc_qa.py): one document per exchange in the template
``Conversation content on {date}:[|User|]: {q}; [|AI|]: {r}`` plus one per daily summary ``The
summary of the conversation on {date} is: {s}``, in store order (each date's exchanges, then its
summary); dense embeddings; top-k 2; each hit expanded with adjacent documents of the same date
while the combined text stays within 200 characters (the patched similarity search); hits grouped
by date. ``Retrieval.ids`` lists the hits in rank order, then their expansions.

``hybrid`` (default): the same documents without the template, scored by BM25 (``lexical.py``) over
three fields: the whole exchange, plus ``turn_fields`` x (the user's turn alone + the AI's reply
alone), each field length-normalised against its own kind, so a long AI reply no longer dilutes the
user's short statement of a fact, and terms matched inside one speaker's turn count more than the
same terms spread over both (multi-field BM25, as in BM25F); plus the dense cosine where the encoder
knows the language (``dense_weight``; all-MiniLM-L6-v2 is English-only, so it gets no weight on
Chinese unless another encoder is named). The ids of the
best ``top_k`` (5) are reported; the best ``prompt_k`` (3) go into the prompt text. Conversation
structure is used, not question rules: an exchange also gets ``follow`` x the score of the exchange
before it on the same date (answers follow the turn that raised the topic), ``answer_follow`` x
instead when that exchange's reply ended by asking the user something (the next user turn is the
answer: "how many are in your group?" -> "about eight"), and ``lead`` x the one after it; a date's summary score is added to that date's exchanges (``summary_weight``); a date the
question names explicitly ("On April 27th", "4月27日") adds ``date_bonus``. Exchanges are returned
ranked, summaries listed after them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from harness.errors import UserError
from harness.records import MemoryItem
from models.memorybank.dates import mentioned_dates
from models.memorybank.embeddings import DEFAULT_ENCODER, ENGLISH_ONLY, VectorIndex, encoder
from models.memorybank.lexical import BM25

MODES = ("hybrid", "released")
CHUNK_SIZE = 200


@dataclass(frozen=True)
class RetrievalSettings:
    """Every knob of the retriever (recorded in config.json through the system's ``info``)."""

    mode: str = "hybrid"
    top_k: int = 5
    prompt_k: int = 3
    embedding: str = DEFAULT_ENCODER
    dense_weight: float | None = None
    follow: float = 0.5
    answer_follow: float = 0.8
    lead: float = 0.2
    date_bonus: float = 1.0
    summary_weight: float = 0.3
    question_weight: float = 0.2
    turn_fields: float = 1.0
    chunk_size: int = CHUNK_SIZE

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"system 'memorybank' option retrieval: '{self.mode}' is not one of {', '.join(MODES)}")
        if self.top_k < 1:
            raise UserError(f"system 'memorybank' option top_k must be >= 1, got {self.top_k}")
        if self.turn_fields < 0:
            raise UserError(f"system 'memorybank' option turn_fields must be >= 0, got {self.turn_fields}")

    def dense_weight_for(self, language: str) -> float:
        """Return the dense weight: explicit, else 1 (0 on Chinese with an English-only encoder)."""
        if self.dense_weight is not None:
            return self.dense_weight
        return 0.0 if language == "zh" and self.embedding in ENGLISH_ONLY else 1.0


@dataclass(frozen=True)
class Retrieval:
    """What one query retrieved: item ids best first, the memory text grouped by date, the dates."""

    ids: tuple[str, ...]
    text: str
    dates: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)


_ASKED = re.compile(r"[?？][^。！!？?.]{0,12}$")


def asks_user(reply: str) -> bool:
    """Return True when a reply ends by asking the user something (a question mark in its last clause)."""
    return bool(_ASKED.search(reply.strip()))


def released_document(item: MemoryItem, user: str = "User", bot: str = "AI") -> str:
    """Return the released LangChain document text of an exchange or daily summary."""
    if item.kind == "summary":
        return f"The summary of the conversation on {item.date} is: {item.text}"
    query, response = item.meta.get("query", item.text), item.meta.get("response", "")
    return f"Conversation content on {item.date}:[|{user}|]: {query}; [|{bot}|]: {response}"


def released_order(items: Sequence[MemoryItem]) -> list[MemoryItem]:
    """Return items in the released index order: each date's exchanges, then that date's summary."""
    dates = list(dict.fromkeys(item.date for item in items))
    ordered = []
    for date in dates:
        ordered += [i for i in items if i.date == date and i.kind != "summary"]
        ordered += [i for i in items if i.date == date and i.kind == "summary"]
    return ordered


def expand_neighbours(hits: Sequence[int], texts: Sequence[str], sources: Sequence[str], chunk_size: int) -> list[set[int]]:
    """Return, per hit, the hit plus adjacent documents of the same source within ``chunk_size``
    characters in all, visiting i+1, i-1, i+2, i-2, ... and stopping at the first that does not fit
    (the released patched ``similarity_search_with_score_by_vector``)."""
    groups = []
    for i in hits:
        chosen, length = {i}, len(texts[i])
        for step in range(1, max(i, len(texts) - i)):
            stop = False
            for j in (i + step, i - step):
                if not 0 <= j < len(texts):
                    continue
                if length + len(texts[j]) > chunk_size:
                    stop = True
                    break
                if sources[j] == sources[i]:
                    length += len(texts[j])
                    chosen.add(j)
            if stop:
                break
        groups.append(chosen)
    return groups


class FieldedBM25:
    """BM25 of the whole exchange plus ``turn_fields`` x the BM25 of each speaker's turn alone.

    A daily summary has one speaker: its text is its user field and its reply field is empty.
    """

    def __init__(self, items: Sequence[MemoryItem], texts: Sequence[str], language: str,
                 settings: RetrievalSettings) -> None:
        weight = settings.question_weight
        self.whole = BM25(texts, language, question_weight=weight)
        self.turn_weight = settings.turn_fields
        self.turns: list[BM25] = []
        if self.turn_weight:
            users = [str(i.meta.get("query", i.text)) if i.kind != "summary" else i.text for i in items]
            replies = [str(i.meta.get("response", "")) if i.kind != "summary" else "" for i in items]
            self.turns = [BM25(users, language, question_weight=weight), BM25(replies, language, question_weight=weight)]

    def scores(self, query: str) -> np.ndarray:
        """Return the fielded score of every item for ``query``."""
        total = self.whole.scores(query)
        for field in self.turns:
            total = total + self.turn_weight * field.scores(query)
        return total


class MemoryRetriever:
    """Retrieval over one user's memory items; built once per store, queried per question."""

    def __init__(self, items: Sequence[MemoryItem], language: str, settings: RetrievalSettings,
                 user: str = "User", bot: str = "AI") -> None:
        self.settings, self.language = settings, language
        self.items = released_order(items) if settings.mode == "released" else list(items)
        if settings.mode == "released":
            self.texts = [released_document(item, user, bot) for item in self.items]
        else:
            self.texts = [f"{i.meta.get('query', i.text)}\n{i.meta.get('response', '')}" if i.kind != "summary" else i.text
                          for i in self.items]
        self.dates = [str(item.date) for item in self.items]
        self.asked = np.array([item.kind != "summary" and asks_user(str(item.meta.get("response", "")))
                               for item in self.items], dtype=bool)
        self.dense_weight = 1.0 if settings.mode == "released" else settings.dense_weight_for(language)
        self.index = VectorIndex(encoder(settings.embedding).encode(self.texts)) if self.dense_weight and self.items else None
        self.lexical = FieldedBM25(self.items, self.texts, language, settings) \
            if settings.mode == "hybrid" and self.items else None

    def retrieve(self, query: str) -> Retrieval:
        """Return what ``query`` retrieves (see the module docstring for both modes)."""
        if not self.items:
            return Retrieval((), "", ())
        if self.settings.mode == "released":
            return self._released(query)
        return self._hybrid(query)

    def _dense(self, query: str) -> np.ndarray:
        assert self.index is not None
        return self.index.scores(encoder(self.settings.embedding).encode([query]))[0]

    def _released(self, query: str) -> Retrieval:
        assert self.index is not None
        _, found = self.index.search(encoder(self.settings.embedding).encode([query]), 2)
        hits = [int(i) for i in found[0]]
        groups = expand_neighbours(hits, self.texts, self.dates, self.settings.chunk_size)
        ordered = hits + sorted(set().union(*groups) - set(hits))
        chosen = sorted(set().union(*groups))
        by_date: dict[str, list[str]] = {}
        for index in sorted(chosen, key=lambda i: (self.dates[i], i)):
            by_date.setdefault(self.dates[index], []).append(self.texts[index])
        text = "\n".join("\n".join(parts) for parts in by_date.values())
        return Retrieval(tuple(self.items[i].id for i in ordered), text, tuple(by_date))

    def _hybrid(self, query: str) -> Retrieval:
        assert self.lexical is not None
        lexical = self.lexical.scores(query)
        score = lexical / lexical.max() if lexical.max() > 0 else lexical
        if self.index is not None:
            dense = self._dense(query)
            spread = dense.max() - dense.min()
            score = score + self.dense_weight * ((dense - dense.min()) / spread if spread > 0 else 0 * dense)
        exchange = np.array([item.kind != "summary" for item in self.items])
        dates = np.array(self.dates)
        same_before = np.r_[False, (dates[1:] == dates[:-1]) & exchange[1:] & exchange[:-1]]
        before = np.r_[0.0, score[:-1]] * same_before
        after = np.r_[score[1:], 0.0] * np.r_[same_before[1:], False]
        asked_before = np.r_[False, self.asked[:-1]]
        follow = np.where(asked_before, self.settings.answer_follow, self.settings.follow)
        final = score + follow * before + self.settings.lead * after
        for index in np.flatnonzero(~exchange):
            final = final + self.settings.summary_weight * score[index] * ((dates == dates[index]) & exchange)
        named = mentioned_dates(query, self.dates)
        if named:
            final = final + self.settings.date_bonus * np.isin(dates, named)
        ranked = [int(i) for i in np.argsort(-final, kind="stable")]
        ranked = [i for i in ranked if exchange[i]] + [i for i in ranked if not exchange[i]]
        top = ranked[: self.settings.top_k]
        by_date: dict[str, list[str]] = {}
        for index in sorted(top[: self.settings.prompt_k], key=lambda i: (self.dates[i], i)):
            by_date.setdefault(self.dates[index], []).append(self.texts[index].replace("\n", " / "))
        text = "\n".join(f"[{date}] " + " | ".join(parts) for date, parts in by_date.items())
        return Retrieval(tuple(self.items[i].id for i in top), text, tuple(by_date),
                         {self.items[i].id: float(final[i]) for i in top})
