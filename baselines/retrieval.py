"""``retrieval``: TF-IDF nearest neighbour, the classic non-generative dialogue baseline.

For ordinary tasks it answers with the training response whose context is most similar to the test
context (and predicts that training example's label). For memory questions (examples that carry a
MemoryStore and a ``question`` input, as MemoryBank's probes do) it ranks the user's own memory
items against the question, reports the top-k item ids
as retrieved evidence and answers with the best item, the retrieval stage of MemoryBank without a
generator. scikit-learn provides the vectoriser; similarity is one sparse matrix product per batch.
"""
from __future__ import annotations

from typing import Any, Sequence

from baselines.copy_last import query_text
from harness.errors import UserError
from harness.records import Example, MemoryItem, Response
from harness.system import System
from harness.task import Task


def context_text(example: Example, last_turns: int) -> str:
    """Return the retrieval key of an example: its last turns plus its string input parts."""
    parts = [t.text for t in example.context[-last_turns:]] if last_turns > 0 else []
    for value in example.inputs.values():
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, (list, tuple)):
            parts.extend(v for v in value if isinstance(v, str))
    return "\n".join(parts)


def asks_memory(example: Example) -> bool:
    """Return True for a question about the user's memory: a store to search and a question to search
    with. Examples that carry memory for other reasons (Dolphin's past sessions, which a system like
    COMEDY summarises itself) keep the nearest-neighbour answer over training contexts."""
    question = example.inputs.get("question")
    return example.memory is not None and bool(example.memory.items) and isinstance(question, str) and bool(question.strip())


class RetrievalSystem(System):
    """Answer with the most similar training response, or the most similar memory item."""

    name = "retrieval"
    description = "TF-IDF nearest neighbour over training contexts (or over the user's memory)"
    uses_training_data = True
    option_names = ("last_turns", "top_k")

    def __init__(self, task: Task, **options: Any) -> None:
        super().__init__(task, **options)
        self.last_turns = int(options.get("last_turns", 2))
        self.top_k = int(options.get("top_k", 3))
        self._vectorizer = None
        self._train_matrix = None
        self._train_examples: list[Example] = []

    def _new_vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.task.language == "zh":  # no spaces between Chinese words: character n-grams
            return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
        return TfidfVectorizer(lowercase=True, ngram_range=(1, 2), sublinear_tf=True)

    def fit(self, train_examples: Sequence[Example]) -> None:
        """Index the training contexts."""
        self._train_examples = [e for e in train_examples if e.references]
        if not self._train_examples:
            return
        self._vectorizer = self._new_vectorizer()
        texts = [context_text(e, self.last_turns) for e in self._train_examples]
        self._train_matrix = self._vectorizer.fit_transform(texts)

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return nearest-neighbour responses, in order."""
        with_memory = [e for e in examples if asks_memory(e)]
        plain = [e for e in examples if not asks_memory(e)]
        answers = {r.example_id: r for r in self._respond_from_memory(with_memory)}
        answers.update((r.example_id, r) for r in self._respond_from_training(plain))
        return [answers[e.id] for e in examples]

    def _respond_from_training(self, examples: Sequence[Example]) -> list[Response]:
        if not examples:
            return []
        if self._vectorizer is None:
            raise UserError(
                f"system 'retrieval' needs training examples for task '{self.task.name}': "
                f"pass --train-data {self.task.name}=PATH"
            )
        queries = self._vectorizer.transform([context_text(e, self.last_turns) for e in examples])
        best = (queries @ self._train_matrix.T).toarray().argmax(axis=1)
        responses = []
        for example, index in zip(examples, best):
            neighbour = self._train_examples[int(index)]
            responses.append(Response(example_id=example.id, text=neighbour.references[0], label=neighbour.label,
                                      meta={"neighbour": neighbour.id}))
        return responses

    def _respond_from_memory(self, examples: Sequence[Example]) -> list[Response]:
        responses = []
        for example in examples:
            items: tuple[MemoryItem, ...] = example.memory.items  # type: ignore[union-attr]
            vectorizer = self._new_vectorizer()
            query = query_text(example)
            try:
                matrix = vectorizer.fit_transform([item.text for item in items] + [query])
            except ValueError:  # every document empty after tokenisation
                responses.append(Response(example_id=example.id, text=""))
                continue
            scores = (matrix[:-1] @ matrix[-1].T).toarray().ravel()
            ranked = scores.argsort()[::-1][: self.top_k]
            best = items[int(ranked[0])]
            answer = str(best.meta.get("response", best.text))
            responses.append(Response(example_id=example.id, text=answer,
                                      retrieved=tuple(items[int(i)].id for i in ranked)))
        return responses

    def info(self) -> dict[str, Any]:
        """Return the options that shape the outputs."""
        return {"name": self.name, "options": {"last_turns": self.last_turns, "top_k": self.top_k},
                "train_examples": len(self._train_examples)}
