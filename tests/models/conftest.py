"""Fixtures for the published-system tests: the tiny random models of tests/generation."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "generation"))

from tiny_lm import isolated_cache, tiny_llama_dir  # noqa: E402,F401
