"""The paper presets' code paths for two steps on a tiny random LLaMA in the released layout:
stage 1 under ZeRO-2, stage 2 (DPO, frozen ZeRO-3 reference) under ZeRO-3, single process on CPU."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from comedy_helpers import SAMPLES, write_released_layout

from training.run import META_FILE

REPO = Path(__file__).resolve().parents[2]


def _train(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "harness", "train", "comedy", "--preset", "paper", "--max-steps", "2",
               "--set", "logging_steps=1", "--no-tensorboard", *args]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    output = Path(args[args.index("--output") + 1])
    return json.loads((output / META_FILE).read_text())


@pytest.mark.slow
def test_paper_sft_zero2_then_dpo_zero3_two_steps(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    base = write_released_layout(tmp_path / "base")
    data = [f"--data=dolphin_{t}={SAMPLES / f'dolphin_{t}.train.jsonl'}" for t in ("summarization", "compression", "response")]
    stage1 = _train("--base", str(base), "--deepspeed", "training/deepspeed/comedy_sft_zero2.json", *data,
                    "--output", str(tmp_path / "sft"))
    assert stage1["zero_stage"] == 2 and stage1["result"]["global_step"] == 2
    assert stage1["preset"]["train"]["warmup"] == 400 and stage1["preset"]["data"]["max_seq_len"] == 2048
    assert all(math.isfinite(loss) for loss in stage1["result"]["losses"])
    stage2 = _train("--stage", "dpo", "--base", str(tmp_path / "sft"), "--deepspeed",
                    "training/deepspeed/comedy_dpo_zero3.json", f"--data=dolphin_response={SAMPLES / 'dolphin_dpo.train.jsonl'}",
                    "--output", str(tmp_path / "dpo"))
    assert stage2["zero_stage"] == 3 and stage2["result"]["global_step"] == 2
    assert stage2["train_config"]["dpo_beta"] == 0.01 and stage2["train_config"]["dpo_sft_weight"] == 0.1
    losses = stage2["result"]["losses"]
    assert all(math.isfinite(loss) for loss in losses)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "dpo")
    assert all(p.numel() > 0 for p in model.parameters())  # ZeRO-3 shards gathered on save
