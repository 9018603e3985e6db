"""Fixtures for the training tests (helpers live in training_helpers.py)."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from training_helpers import HOBBIES, one_thread, write_convai2


@pytest.fixture(scope="session")
def convai2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-dialogue synthetic ConvAI2 file (34 train / 6 valid under the 85% rule)."""
    return write_convai2(tmp_path_factory.mktemp("data") / "convai2.txt", 40)


@pytest.fixture(scope="session")
def text_corpus() -> list[str]:
    """Sentences for tiny tokenizers and preference pairs."""
    rng = random.Random(1)
    return [f"user : do you like {rng.choice(HOBBIES)} ? bot : yes i like {rng.choice(HOBBIES)} ." for _ in range(200)]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test here runs its tiny models on one thread (see training_helpers.one_thread)."""
    with one_thread():
        yield
