"""Table row labels: two runs of one system with different switches never share a name."""
from __future__ import annotations

from harness.rundir import RunConfig


def _label(options: dict) -> str:
    return RunConfig({"system": {"name": "memorybank", "options": options}}).label()


def test_switches_are_named_and_run_settings_are_not():
    plain = _label({"model": "embedded:smollm2-135m-instruct", "max_new_tokens": 48, "seed": 0})
    released = _label({"model": "embedded:smollm2-135m-instruct", "max_new_tokens": 48, "retrieval": "released",
                       "top_k": 3})
    assert plain == "memorybank (embedded:smollm2-135m-instruct)"
    assert released == "memorybank[retrieval=released,top_k=3] (embedded:smollm2-135m-instruct)"
    assert _label({}) == "memorybank" and _label({"batch_size": 4, "no_cache": True}) == "memorybank"
