"""Parsing --model strings into ModelSources: every accepted form, and one-line errors for the rest."""
from __future__ import annotations

import json

import pytest

from harness.errors import UserError
from harness.checkpoints.source import parse_source


def test_embedded_aliases_resolve_to_the_installed_wheels():
    smol = parse_source("embedded:smollm2-135m-instruct")
    assert smol.kind == "gguf" and smol.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and smol.path.is_file()
    minilm = parse_source("embedded:minilm")
    assert minilm.kind == "hf_dir" and (minilm.path / "config.json").is_file()
    with pytest.raises(UserError, match="unknown embedded model 'smollm'.*embedded:minilm"):
        parse_source("embedded:smollm")


def test_local_folders_are_classified_by_their_files(tmp_path, tiny_llama_dir):
    assert parse_source(str(tiny_llama_dir)).kind == "hf_dir"
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert parse_source(str(gguf)).kind == "gguf"
    zero = tmp_path / "zero"
    (zero / "global_step3").mkdir(parents=True)
    (zero / "latest").write_text("global_step3")
    assert parse_source(str(zero)).kind == "deepspeed"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_llama_dir)}))
    source = parse_source(str(adapter))
    assert source.kind == "peft" and source.base.path == tiny_llama_dir.resolve()
    merged = parse_source(f"{tiny_llama_dir}+adapter={adapter}+merge")
    assert merged.kind == "peft" and merged.merge and merged.base.kind == "hf_dir"


def test_hub_ids_are_recognised_but_paths_are_not_guessed(tmp_path):
    hub = parse_source("HuggingFaceTB/SmolLM2-135M-Instruct@main")
    assert (hub.kind, hub.name, hub.revision) == ("hub", "HuggingFaceTB/SmolLM2-135M-Instruct", "main")
    for missing in (str(tmp_path / "nope"), "./runs/model", "weights.gguf"):
        with pytest.raises(UserError, match="model path not found"):
            parse_source(missing)


def test_bad_combinations_are_user_errors(tmp_path, tiny_llama_dir):
    with pytest.raises(UserError, match="applies to adapters only"):
        parse_source(f"{tiny_llama_dir}+merge")
    with pytest.raises(UserError, match="not a PEFT adapter folder"):
        parse_source(f"{tiny_llama_dir}+adapter={tiny_llama_dir}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="not a model folder"):
        parse_source(str(empty))
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    (orphan / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone")}))
    with pytest.raises(UserError, match="base model .* not found.*BASE\\+adapter="):
        parse_source(str(orphan))
