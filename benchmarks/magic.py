"""Benchmark: MAGIC training throughput (both stages) and batched beam-search speedup with identical outputs.

- Training: ``dialbench train magic --preset tiny`` for ``--strategy-steps`` / ``--response-steps``
  optimizer steps on ../shared/data/esconv/valid.txt (synthetic dialogues when absent); reported as
  non-padding input tokens per second of each stage's ``train_runtime``; then the strategy stage
  with and without frozen lower-layer states (``frozen_states``), seconds per step side by side.
- Generation: the trained response model (``strategy=gold``, so only the response model decodes)
  on ``--examples`` held-out examples (MAGIC's test rule), beam 5 through the engine's encoder hook
  at batch 16 vs one example per call, and the released probability-summing search the same way;
  outputs must be identical, else the benchmark fails.
The CPU is shared with other work on the reference machine: numbers vary by several x with load.
The last output line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ESCONV = ROOT.parent / "shared" / "data" / "esconv" / "valid.txt"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def data_file(tmp: Path) -> tuple[Path, str]:
    """Return a MultiESC file to train on and where it came from."""
    if ESCONV.is_file():
        return ESCONV, str(ESCONV)
    rng = random.Random(0)
    strategies = ["Question", "Reflection of feelings", "Providing Suggestions or Information", "Greeting"]
    lines = []
    for d in range(60):
        dialog = []
        for n in range(10):
            if n % 2 == 0:
                dialog.append({"text": f"i feel bad about thing {d % 7} .", "speaker": "usr"})
            else:
                s = rng.choice(strategies)
                dialog.append({"text": f"reply {strategies.index(s)} about thing {d % 7} .", "speaker": "sys", "strategy": s})
        lines.append(json.dumps({"emotion_type": "sadness", "problem_type": "job", "situation": "synthetic", "dialog": dialog}))
    path = tmp / "synthetic_esconv.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, "synthetic"


def bench_training(data: Path, out: Path, strategy_steps: int, response_steps: int) -> dict:
    """Train each stage for a few steps; return its throughput."""
    from training.recipe import TrainingData
    from training.run import train

    result = {}
    for stage, steps in (("strategy", strategy_steps), ("response", response_steps)):
        summary = train("magic", TrainingData(train={"esconv_strategy": data}), out, preset="tiny", max_steps=steps,
                        overrides={"parts": stage, "eval_steps": steps * 100, "logging_steps": steps}, report_to=())
        result[stage] = {"steps": summary["global_step"], "train_tokens": summary["train_tokens"],
                         "tokens_per_s": round(summary["tokens_per_s"], 1)}
    return result


def bench_frozen_states(data: Path, out: Path, steps: int) -> dict:
    """Train the tiny strategy stage with and without frozen lower-layer states, side by side.

    Both runs take the same examples and steps; ``step_s`` is seconds per optimizer step (the part
    an epoch repeats), ``setup_s`` the rest of the wall (model load, records, and with frozen
    states the one-off pass through the frozen layers).
    """
    from dataclasses import replace

    from models.magic.strategy_recipe import STRATEGY_PRESETS
    from training.recipe import TrainingData
    from training.run import train

    tiny = STRATEGY_PRESETS["tiny"]
    result = {}
    for frozen in (True, False):
        preset = replace(tiny, data={**tiny.data, "frozen_states": frozen, "max_train_examples": steps * 8})
        started = time.perf_counter()
        summary = train("magic", TrainingData(train={"esconv_strategy": data}), out / f"frozen-{frozen}", preset=preset,
                        max_steps=steps, overrides={"parts": "strategy", "eval_steps": steps * 100,
                                                    "logging_steps": steps}, report_to=())
        wall = time.perf_counter() - started
        runtime = summary["train_runtime_s"]
        result["frozen" if frozen else "full"] = {"steps": summary["global_step"], "step_s": round(runtime / steps, 3),
                                                  "setup_s": round(wall - runtime, 1), "loss": summary["train_loss"]}
    result["step_speedup"] = round(result["full"]["step_s"] / result["frozen"]["step_s"], 2)
    return result


def bench_generation(model_dir: Path, data: Path, examples: int) -> dict:
    """Time batched vs one-at-a-time decoding (standard and released) and check the outputs match."""
    from harness.generation import GenerationConfig, Generator
    from harness.runner import load_examples
    from models.magic.system import MagicSystem
    from tasks.esconv import ESConvStrategyTask

    task = ESConvStrategyTask(protocol="last", expand_contractions=True)
    rows = load_examples(task, data, None)[-examples:]
    system = MagicSystem(task, model=str(model_dir), strategy="gold", no_cache=True, progress=False, batch_size=16)
    prompts = system.prompts(rows, system.strategies(rows))
    config = GenerationConfig(max_new_tokens=system.max_new_tokens, num_beams=system.num_beams)
    timings = {}
    outputs = {}
    for label, size in (("batched", 16), ("single", 1)):
        generator = Generator(system.model, system.tokenizer, fingerprint=system.fingerprint, batch_size=size, progress=False)
        started = time.perf_counter()
        outputs[label] = generator.generate(prompts, config, encoder_hook=system.hook)
        timings[label] = time.perf_counter() - started
    for label, size in (("released_batched", 16), ("released_single", 1)):
        system.batch_size = size
        started = time.perf_counter()
        outputs[label] = system.released_decode(prompts)
        timings[label] = time.perf_counter() - started
    system.close()
    if outputs["batched"] != outputs["single"] or outputs["released_batched"] != outputs["released_single"]:
        raise SystemExit("batched and one-at-a-time outputs differ")
    return {"examples": len(rows), "beams": 5, "standard_speedup": round(timings["single"] / timings["batched"], 2),
            "released_speedup": round(timings["released_single"] / timings["released_batched"], 2),
            "seconds": {k: round(v, 2) for k, v in timings.items()}, "identical_outputs": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy-steps", type=int, default=2)
    parser.add_argument("--response-steps", type=int, default=20)
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--frozen-steps", type=int, default=6, help="steps of the frozen-states comparison")
    parser.add_argument("--model", type=Path, help="an existing `dialbench train magic` output (skips training)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, origin = data_file(Path(tmp))
        result: dict = {"data": origin}
        if args.model is None:
            out = Path(tmp) / "magic"
            result["training"] = bench_training(data, out, args.strategy_steps, args.response_steps)
            result["strategy_frozen_states"] = bench_frozen_states(data, Path(tmp) / "frozen", args.frozen_steps)
            model = out
        else:
            model = args.model
        result["generation"] = bench_generation(model, data, args.examples)
        result["tokens_per_s_strategy"] = result.get("training", {}).get("strategy", {}).get("tokens_per_s")
        result["tokens_per_s_response"] = result.get("training", {}).get("response", {}).get("tokens_per_s")
        result["strategy_step_speedup_frozen_states"] = result.get("strategy_frozen_states", {}).get("step_speedup")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
