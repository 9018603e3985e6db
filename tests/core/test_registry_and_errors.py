"""The registry resolves lazily, refuses duplicates and suggests close names; errors carry file:line."""
from __future__ import annotations

import json

import pytest

from harness.errors import DataError, UserError
from harness.jsonio import iter_jsonl, read_json, read_text, write_json
from harness.registry import Registry


def test_lazy_registry_imports_on_first_get():
    registry: Registry = Registry("thing")
    registry.add_lazy("dumps", "json:dumps")
    assert registry.names() == ["dumps"]
    assert registry.get("dumps") is json.dumps


def test_registering_a_name_twice_is_an_error():
    registry: Registry = Registry("thing")
    registry.add_lazy("a", "json:dumps")
    with pytest.raises(ValueError, match="registered twice"):
        registry.add_lazy("a", "json:loads")


def test_unknown_name_suggests_close_match_and_lists_choices():
    registry: Registry = Registry("task")
    registry.add_lazy("esconv_strategy", "json:dumps")
    registry.add_lazy("convai2_persona", "json:loads")
    with pytest.raises(UserError) as info:
        registry.get("esconv_stratgy")
    message = str(info.value)
    assert "did you mean 'esconv_strategy'" in message
    assert "convai2_persona" in message


def test_jsonl_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        list(iter_jsonl(path))
    assert str(info.value).startswith(f"{path}:2: json: ")


def test_truncated_last_line_is_reported_as_truncated(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b"', encoding="utf-8")
    with pytest.raises(DataError, match=r":2: json: truncated line"):
        list(iter_jsonl(path))


def test_non_utf8_bytes_are_located(tmp_path):
    path = tmp_path / "data.json"
    path.write_bytes(b'{"a":\n "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"data.json:2: encoding: invalid UTF-8 byte 0xe9"):
        read_text(path)


def test_empty_file_and_missing_file(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.json:1: file: file is empty"):
        read_json(empty)
    with pytest.raises(UserError, match="file not found"):
        read_json(tmp_path / "missing.json")


def test_write_json_is_atomic_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "out" / "results.json"
    write_json(target, {"results": {"t": {"ppl": 1.5}}})
    write_json(target, {"results": {"t": {"ppl": 2.5}}})
    assert json.loads(target.read_text())["results"]["t"]["ppl"] == 2.5
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


def test_system_flag_options_parse_text_and_refuse_anything_else():
    """Every system reads true/false options through ``System.flag`` (``--set`` values arrive as text)."""
    from harness.errors import UserError
    from harness.plugins import SYSTEMS

    comedy = SYSTEMS.get("comedy")
    assert comedy.flag({}, "no_cache", True) is True
    assert comedy.flag({"no_cache": False}, "no_cache", True) is False
    assert [comedy.flag({"x": w}, "x", False) for w in ("true", "YES", " 1 ", "false", "no", "0")] == [
        True, True, True, False, False, False]
    with pytest.raises(UserError, match="system 'comedy' option no_cache: expected true or false, got 'maybe'"):
        comedy.flag({"no_cache": "maybe"}, "no_cache", False)
    # the systems that used to carry their own copy now use the shared one
    for name in ("spt", "memorybank", "gpt2_dialogue", "comedy"):
        module = __import__(SYSTEMS.get(name).__module__, fromlist=["_"])
        assert not hasattr(module, "_flag"), name
