"""Fixtures for engine tests: tiny random models saved once per session, isolated cache folders."""
from __future__ import annotations

from pathlib import Path

import pytest

from tiny_lm import save_tiny_llama, save_tiny_t5


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $DIALBENCH_CACHE at a fresh folder so tests never share or pollute a user's cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DIALBENCH_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama with peaked (trained-like) next-token distributions."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def flat_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama at the usual 0.02 init: near-uniform distributions, near-ties everywhere."""
    return save_tiny_llama(tmp_path_factory.mktemp("flat-llama"), init_range=0.02, seed=1)


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5-style encoder-decoder."""
    return save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir: Path):
    """The tiny Llama loaded through models.loader (float32, CPU)."""
    from models.loader import load_model

    return load_model(str(tiny_llama_dir), dtype="float32", device="cpu")

