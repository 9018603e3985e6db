"""Benchmark: training throughput of the stack (HF Trainer via ``training.run.execute``) on this machine.

Two measurements, both reported as non-padding input tokens per second of ``train_runtime``:
- ``tiny``: the ``gpt2_dialogue`` tiny preset (random 2-layer GPT-2, project BPE tokenizer) on the
  PersonaChat windows of ../shared/data (synthetic template dialogues when absent), ``--tiny-steps``
  optimizer steps of batch 16;
- ``lora``: SmolLM2-135M-Instruct (the embedded GGUF, converted once to a cached safetensors folder
  by ``models``) with LoRA r=8 on q/k/v/o, ``--lora-steps`` steps of batch ``--lora-batch``, the
  longest rows of dialogue context (masked) + reply (trained), cut to ``--lora-len`` tokens.
The CPU is shared with other work on the reference machine: numbers vary by 2-4x with load.
The last output line is one JSON object with ``tokens_per_s_tiny`` and ``tokens_per_s_lora``.
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
PERSONACHAT = ROOT.parent / "shared" / "data" / "personachat" / "valid_self_original_no_cands.head200.txt"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def data_file(tmp: Path) -> tuple[Path, str]:
    """Return a ConvAI2 text file to train on and where it came from."""
    if PERSONACHAT.is_file():
        return PERSONACHAT, str(PERSONACHAT)
    rows = []
    for d in range(200):
        rows += [f"1 your persona: i like topic {d % 7}."]
        rows += [f"{n} do you like topic {(d + n) % 7} ?\tyes , i like topic {(d + n) % 7} a lot ." for n in range(2, 9)]
    path = tmp / "synthetic_convai2.txt"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, "synthetic"


def bench_tiny(data: Path, out: Path, steps: int, threads: int) -> dict:
    """Train the gpt2_dialogue tiny preset for ``steps`` steps; return its throughput."""
    from training.run import train
    from training.recipe import TrainingData

    summary = train("gpt2_dialogue", TrainingData(train={"convai2_persona": data}), out / "tiny", preset="tiny",
                    max_steps=steps, overrides={"eval_steps": steps * 10, "logging_steps": steps, "cpu_threads": threads},
                    report_to=())
    return {"steps": summary["global_step"], "batch": 16, "train_tokens": summary["train_tokens"],
            "seconds": round(summary["train_runtime_s"], 2), "tokens_per_s": round(summary["tokens_per_s"], 1)}


def lora_rows(tokenizer, data: Path, max_len: int) -> list[dict]:
    """Return SFT rows: the dialogue so far (masked) + the bot reply and eos (trained)."""
    from harness.plugins import TASKS
    from training.collate import encode_segments

    task = TASKS.get("convai2_persona")()
    rows = []
    for example in task.build_examples(task.load(data)):
        context = "\n".join(turn.text for turn in example.context)
        segments = [(tokenizer.encode(context + "\n"), False),
                    (tokenizer.encode(example.references[0]) + [tokenizer.eos_token_id], True)]
        row = encode_segments(segments, max_length=max_len)
        if row is not None:
            rows.append(row)
    return rows


def bench_lora(data: Path, out: Path, steps: int, batch: int, max_len: int, threads: int) -> dict:
    """Train LoRA on SmolLM2-135M for ``steps`` steps; return its throughput."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.checkpoints.loader import local_folder
    from harness.checkpoints.source import parse_source
    from training import engine
    from training.adapters import AdapterSpec, apply_adapter
    from training.collate import PaddingCollator
    from training.config import TrainConfig
    from training.recipe import TrainingJob
    from training.run import execute

    started = time.time()
    folder = local_folder(parse_source("embedded:smollm2-135m-instruct"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = apply_adapter(AutoModelForCausalLM.from_pretrained(folder), AdapterSpec(kind="lora", r=8, alpha=16))
    load_s = time.time() - started
    # the longest rows (late turns, long contexts) so each step is close to batch x max_len tokens
    rows = sorted(lora_rows(tokenizer, data, max_len), key=lambda row: -len(row["input_ids"]))[: steps * batch]
    config = TrainConfig(learning_rate=1e-4, epochs=1, batch_size=batch, logging_steps=1, bf16=False, cpu_threads=threads)
    job = TrainingJob(model=model, tokenizer=tokenizer, train_dataset=rows, config=config,
                      collator=PaddingCollator(pad_id=tokenizer.pad_token_id or tokenizer.eos_token_id))
    args = engine.make_arguments(config, out / "lora", max_steps=steps, report_to=())
    summary = execute(job, out / "lora", args=args)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"steps": summary["global_step"], "batch": batch, "max_len": max_len, "trainable_params": trainable,
            "train_tokens": summary["train_tokens"], "seconds": round(summary["train_runtime_s"], 2),
            "tokens_per_s": round(summary["tokens_per_s"], 1), "load_s": round(load_s, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-steps", type=int, default=60)
    parser.add_argument("--lora-steps", type=int, default=4)
    parser.add_argument("--lora-batch", type=int, default=4)
    parser.add_argument("--lora-len", type=int, default=256)
    parser.add_argument("--skip-lora", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads while training (default 1: on the shared 2-core reference machine a "
                             "second thread stalled LoRA steps 6x; 0 = torch's default)")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        data, origin = data_file(Path(tmp))
        threads = args.threads or torch.get_num_threads()
        tiny = bench_tiny(data, Path(tmp), args.tiny_steps, threads)
        print(f"tiny gpt2_dialogue: {tiny}", flush=True)
        lora = None if args.skip_lora else bench_lora(data, Path(tmp), args.lora_steps, args.lora_batch, args.lora_len, threads)
        if lora:
            print(f"smollm2-135m + lora: {lora}", flush=True)
    result = {
        "tokens_per_s_tiny": tiny["tokens_per_s"],
        "tokens_per_s_lora": lora["tokens_per_s"] if lora else None,
        "tiny": tiny, "lora": lora, "data": origin,
        "device": "cuda" if torch.cuda.is_available() else "cpu", "cpu_threads": threads,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
