"""DeepSpeed ZeRO-2/ZeRO-3 on CPU: one process (gloo, world of one) and a 2-process launcher run.

Each run is a subprocess (``python -m harness train``): DeepSpeed initialises torch.distributed once
per process, and this also tests the command line end to end. The first run in a fresh checkout
compiles DeepSpeed's comm extension (~30 s; cached in .cache/torch_extensions), hence ``slow``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.run import META_FILE

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    return env


def _train(prefix: list[str], data: Path, output: Path, *extra: str) -> dict:
    command = [*prefix, "train", "gpt2_dialogue", "--data", f"convai2_persona={data}", "--output", str(output),
               "--set", "eval_steps=2", "--set", "logging_steps=1", "--no-tensorboard", *extra]
    done = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((output / META_FILE).read_text())


def _check_consolidated(output: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(output)
    assert all(p.numel() > 0 for p in model.parameters())  # ZeRO-3 shards were gathered, not saved empty
    assert model.config.n_layer == 2


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_single_process_zero_trains_resumes_and_saves_consolidated(tmp_path: Path, convai2_file: Path, stage: str) -> None:
    python = [sys.executable, "-m", "harness"]
    meta = _train(python, convai2_file, tmp_path, "--deepspeed", stage, "--max-steps", "4")
    assert meta["zero_stage"] == int(stage[-1]) and meta["world_size"] == 1
    losses = meta["result"]["losses"]
    assert meta["result"]["global_step"] == 4 and losses[-1] < losses[0]
    assert (tmp_path / "checkpoints" / "checkpoint-4").is_dir()
    resumed = _train(python, convai2_file, tmp_path, "--deepspeed", stage, "--max-steps", "6", "--resume")
    assert resumed["result"]["global_step"] == 6 and resumed["result"]["resumed_from"].endswith("checkpoint-4")
    _check_consolidated(tmp_path)


@pytest.mark.slow
def test_two_process_launcher_run(tmp_path: Path, convai2_file: Path) -> None:
    launcher = shutil.which("deepspeed", path=str(Path(sys.executable).parent)) or shutil.which("deepspeed")
    if launcher is None:
        pytest.skip("the deepspeed launcher is not installed")
    prefix = [launcher, "--num_gpus", "2", "--master_port", "29517", "--no_local_rank", "--module", "harness"]
    meta = _train(prefix, convai2_file, tmp_path, "--deepspeed", "zero2", "--max-steps", "4")
    assert meta["world_size"] == 2 and meta["result"]["global_step"] == 4
    # 34 training dialogues x 4 windows = 136 rows; tiny batch 16 per rank: 5 steps per epoch on 2 ranks
    # (68 rows each), where one process would need 9
    assert meta["result"]["evaluations"][-1]["epoch"] == pytest.approx(4 / 5, abs=1e-3)
    _check_consolidated(tmp_path)
