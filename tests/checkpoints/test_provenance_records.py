"""config.json and tables name the precision and quantisation actually used."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.rundir import RunConfig


def write_tiny_gguf(path: Path) -> Path:
    """Write a two-tensor GGUF file whose weight matrix is Q4_1-quantised."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    writer = GGUFWriter(str(path), "llama")
    weights = np.random.default_rng(0).random((4, 64), dtype=np.float32)
    writer.add_tensor("blk.0.attn_q.weight", quantize(weights, GGMLQuantizationType.Q4_1), raw_dtype=GGMLQuantizationType.Q4_1)
    writer.add_tensor("output_norm.weight", weights[0])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_quantisation_is_read_from_the_tensor_table(tmp_path):
    from harness.checkpoints.convert import gguf_quantisation, recorded_quantisation
    from harness.checkpoints.source import parse_source

    path = write_tiny_gguf(tmp_path / "tiny.gguf")  # no hint in the file name
    assert gguf_quantisation(path) == "Q4_1"
    folder = tmp_path / "converted"
    folder.mkdir()
    assert recorded_quantisation(folder, parse_source(str(path))) == "Q4_1"
    assert json.loads((folder / "dialbench-origin.json").read_text())["quantisation"] == "Q4_1"  # read once


def test_table_caption_names_the_quantised_model(tmp_path):
    from harness.rundir import RunResults, TaskResult, write_config, write_results
    from leaderboards.render import render_table

    config = RunConfig({"system": {"name": "zero_shot_lm", "options": {}}, "task_runs": {"convai2_persona": {"system": {
        "model": {"source": {"name": "SmolLM2-135M-Instruct.Q4_1"}, "quantisation": "Q4_1 GGUF, de-quantised to float32"}}}}})
    write_config(tmp_path, config)
    write_results(tmp_path, RunResults("zero_shot_lm", {"convai2_persona": TaskResult("convai2_persona", {"F1": 10.0})}))
    assert "model: zero_shot_lm: SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised to float32)" in render_table([tmp_path])
    latex = render_table([tmp_path], fmt="latex")
    assert "\\begin{tabular}{lrr}" in latex  # numeric columns right-aligned


def test_cpu_training_records_the_fp32_it_ran_in(tmp_path):
    from training.run import META_FILE, train
    from training.recipe import TrainingData
    from tests.training.training_helpers import small_preset, write_convai2

    data = write_convai2(tmp_path / "convai2.txt", 12)
    train("gpt2_dialogue", TrainingData(train={"convai2_persona": data}), tmp_path / "out",
          preset=small_preset(bf16=True), max_steps=1, report_to=())
    meta = json.loads((tmp_path / "out" / META_FILE).read_text())
    assert meta["precision"]["bf16"] is False and meta["precision"]["bf16_requested"] is True
    assert meta["train_config"]["bf16"] is False and meta["precision"]["parameter_dtype"] == "float32"
