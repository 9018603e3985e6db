"""Fixtures for engine tests: tiny random models saved once per session, isolated cache folders."""
from __future__ import annotations

from tiny_lm import flat_llama_dir, isolated_cache, tiny_llama, tiny_llama_dir, tiny_t5_dir  # noqa: F401
