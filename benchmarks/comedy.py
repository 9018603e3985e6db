"""Benchmark: COMEDY training throughput (SFT and DPO tokens/s) and pipeline wall time per episode.

- SFT: the ``tiny`` preset's stage 1 on the bundled Dolphin samples for ``--steps`` optimizer steps;
- DPO: stage 2 from that output on the bundled synthetic preference pairs, ``--steps`` steps
  (tokens = chosen + rejected rows, non-padding, as the Trainer counts them);
- pipeline: the three stages through the shared engine on a synthetic 22-session episode file
  (``--episodes`` episodes, 15 memories + 1 compression + 5 replies each), cold (empty cache) and
  warm (the same run again: every stage served from the cache), greedy, ``--max-new-tokens`` each.
The CPU is shared on the reference machine: figures vary by 2-4x with load.
The last output line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SAMPLES = ROOT / "tasks" / "samples"


def episodes_file(path: Path, episodes: int, sessions: int = 22) -> Path:
    """Write synthetic episodes (every session answerable: fifth utterance > 10 characters)."""
    document = {}
    for e in range(episodes):
        document[f"ep{e}"] = {f"s{n}": {"sub_history": [f"林晓：第{n}次聊天，今天做了第{e}道菜。", "小暖：真好！", "林晓：有点累。",
                                                        "小暖：早点休息。", f"林晓：明天还想试试第{n + 1}道菜，你觉得怎么样呢？"],
                                        "username": "林晓", "botname": "小暖"} for n in range(1, sessions + 1)}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    from harness.runner import SystemSpec, TaskSpec, run_system
    from training.recipe import TrainingData
    from training.run import train

    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        sft_data = TrainingData(train={f"dolphin_{t}": SAMPLES / f"dolphin_{t}.train.jsonl"
                                       for t in ("summarization", "compression", "response")})
        sft = train("comedy", sft_data, tmp / "sft", preset="tiny", max_steps=args.steps, report_to=())
        dpo = train("comedy", TrainingData(train={"dolphin_response": SAMPLES / "dolphin_dpo.train.jsonl"}), tmp / "dpo",
                    preset="tiny", stage="dpo", base=str(tmp / "sft"), max_steps=args.steps, report_to=())
        data = episodes_file(tmp / "episodes.json", args.episodes)
        options = {"model": str(tmp / "dpo"), "decoding": "greedy", "max_new_tokens": args.max_new_tokens,
                   "cache_path": str(tmp / "cache.sqlite"), "progress": False}
        spec = TaskSpec("dolphin_response", data=data)
        walls = []
        for run in ("cold", "warm"):
            started = time.perf_counter()
            run_system(SystemSpec("comedy", options), [spec], tmp / run, command=["benchmark"])
            walls.append(time.perf_counter() - started)
            print(f"pipeline {run}: {walls[-1]:.1f} s for {args.episodes} episodes", flush=True)
    result = {"sft_tokens_per_s": round(sft["tokens_per_s"], 1), "dpo_tokens_per_s": round(dpo["tokens_per_s"], 1),
              "sft_steps": sft["global_step"], "dpo_steps": dpo["global_step"], "episodes": args.episodes,
              "pipeline_s_per_episode_cold": round(walls[0] / args.episodes, 2),
              "pipeline_s_per_episode_warm": round(walls[1] / args.episodes, 2),
              "max_new_tokens": args.max_new_tokens}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
