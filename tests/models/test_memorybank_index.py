"""MemoryBank's vector index: faiss (a requirement) and the NumPy fallback return the same exact top-k."""
from __future__ import annotations

import numpy as np
import pytest

from models.memorybank.embeddings import VectorIndex, faiss_available


def _normalised(rng: np.random.Generator, rows: int, dims: int = 384) -> np.ndarray:
    vectors = rng.standard_normal((rows, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_faiss_is_installed_and_used_by_default():
    assert faiss_available(), "faiss-cpu is in requirements.txt"
    assert VectorIndex(_normalised(np.random.default_rng(0), 4)).backend == "faiss"


@pytest.mark.parametrize("k", [1, 2, 5, 50])
def test_faiss_and_numpy_agree_exactly(k):
    rng = np.random.default_rng(k)
    store, queries = _normalised(rng, 2000), _normalised(rng, 7)
    faiss_scores, faiss_ids = VectorIndex(store, backend="faiss").search(queries, k)
    numpy_scores, numpy_ids = VectorIndex(store, backend="numpy").search(queries, k)
    assert (faiss_ids == numpy_ids).all()
    np.testing.assert_allclose(faiss_scores, numpy_scores, rtol=0, atol=1e-5)
    brute = np.argsort(-(queries @ store.T), axis=1, kind="stable")[:, :k]
    assert (numpy_ids == brute).all()


def test_k_larger_than_the_store_returns_every_item():
    store = _normalised(np.random.default_rng(3), 3)
    _, ids = VectorIndex(store).search(store[:1], 10)
    assert sorted(ids[0].tolist()) == [0, 1, 2] and ids[0, 0] == 0
