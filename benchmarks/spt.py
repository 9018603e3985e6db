"""Benchmark SPT's two batching choices: the K x B training forward and mixed-prompt batched generation.

    python benchmarks/spt.py [--tiny] [--batch 2] [--steps 3] [--rows 16] [--max-new-tokens 16] [--threads 1]

1. Training: one SPT step (forward + backward of the whole objective) on B ConvAI2 examples in the
   published template, (a) as one K x B forward (``SPTModel.prompted_logits``) and (b) as K separate
   B-row forwards of the same prompts; both give the same loss (checked). Throughput counts the
   input tokens of all K prompted copies, so the ratio is the time ratio.
2. Generation: ``rows`` prompts whose selected prompts differ (row i takes prompt i mod K) through the
   shared engine in batches of 16 vs one row at a time, greedy, no cache; the outputs must be identical.

The base is the embedded SmolLM2-135M-Instruct (``--tiny``: a random-init 2-layer Llama, seconds).
Data: ../shared/data/personachat when present, else the bundled ConvAI2 sample. The CPU is shared,
so only ratios measured side by side in this run mean anything. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data" / "personachat" / "valid_self_original_no_cands.head200.txt"
SAMPLE = REPO / "tasks" / "samples" / "convai2_persona.test.txt"


def load_base(tiny: bool):
    """Return (base model, tokenizer): SmolLM2-135M-Instruct, or a random-init tiny Llama."""
    if not tiny:
        from harness.checkpoints.loader import load_model

        loaded = load_model("embedded:smollm2-135m-instruct", dtype="float32", device="cpu")
        return loaded.model, loaded.tokenizer
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from training.tokenizer import train_bpe_tokenizer

    texts = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=400)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=1024, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return AutoModelForCausalLM.from_config(config).eval(), tokenizer


def k_separate_logits(model, batch):
    """Return the PromptedLogits of ``batch`` computed as K separate B-row forwards (the naive way)."""
    import torch

    from models.spt.model import PromptedLogits
    from training.collate import IGNORE_INDEX

    k, n = model.prompts.shape[:2]
    rows, length = batch["input_ids"].shape
    targets = batch["labels"][:, 1:]
    chosen = targets != IGNORE_INDEX
    head = model.base.get_output_embeddings()
    logits = []
    for index in range(k):
        prefix = model.prompts[index].unsqueeze(0).expand(rows, n, model.prompt_dim)
        hidden = model.hidden(prefix, batch["input_ids"], batch["attention_mask"])[:, n:]
        logits.append(head(hidden[:, :-1][chosen]).float())
    scores = model.selection_scores(batch["selector_ids"], batch["selector_mask"])
    row_of = torch.arange(rows).unsqueeze(1).expand_as(targets)[chosen]
    return PromptedLogits(torch.stack(logits), targets[chosen], row_of, scores, rows)


def time_steps(model, batch, steps: int, separate: bool) -> tuple[float, float]:
    """Return (seconds per step, loss of the last step) for forward + backward of the SPT objective."""
    from models.spt.losses import objective

    model.zero_grad()
    started = time.perf_counter()
    loss = 0.0
    for _ in range(steps):
        out = k_separate_logits(model, batch) if separate else model.prompted_logits(
            batch["input_ids"], batch["attention_mask"], batch["labels"], batch["selector_ids"], batch["selector_mask"])
        total = objective(out, batch.get("pair_targets"), model.spt)["loss"]
        total.backward()
        loss = float(total.detach())
    return (time.perf_counter() - started) / steps, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="random-init 2-layer Llama instead of SmolLM2-135M")
    parser.add_argument("--batch", type=int, default=2, help="examples per training step (paper: 2)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rows", type=int, default=16, help="prompts to generate for")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from harness.generation import GenerationConfig, TokenPrompt
    from harness.plugins import TASKS
    from models.spt.config import SPTConfig
    from models.spt.format import SPTFormat
    from models.spt.model import SPTModel
    from models.spt.system import engine_for, prefix_name
    from models.spt.trainer import SPTCollator

    torch.set_num_threads(args.threads)
    task = TASKS.get("convai2_persona")()
    data = SHARED if SHARED.is_file() else SAMPLE
    examples = task.build_examples(task.load(data))
    base, tokenizer = load_base(args.tiny)
    config = SPTConfig(base="benchmark", num_prompts=4, num_virtual_tokens=8, max_length=256, max_context_turns=2)
    fmt = SPTFormat(tokenizer, config.max_length, config.max_context_turns)
    torch.manual_seed(0)
    model = SPTModel(base, config, fmt.pad_id).train()
    rows = fmt.rows(examples[: args.batch])
    batch = SPTCollator(fmt.pad_id)(rows)
    tokens = int(batch["attention_mask"].sum()) * config.num_prompts
    time_steps(model, batch, 1, separate=False)  # warm-up (allocator, kernels)
    batched_s, batched_loss = time_steps(model, batch, args.steps, separate=False)
    separate_s, separate_loss = time_steps(model, batch, args.steps, separate=True)
    print(f"train step: K x B forward {batched_s:.3f} s, K separate forwards {separate_s:.3f} s; "
          f"losses {batched_loss:.6f} vs {separate_loss:.6f}", file=sys.stderr)

    model.eval()
    prompts = [TokenPrompt(fmt.prompt_ids(e), prefix=prefix_name(i % config.num_prompts))
               for i, e in enumerate(examples[: args.rows])]
    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens)
    timings, outputs = {}, {}
    for size in (16, 1):
        generator = engine_for(model, tokenizer, f"benchmark-spt-{size}", batch_size=size, progress=False)
        started = time.perf_counter()
        outputs[size] = generator.generate(prompts, cfg)
        timings[size] = time.perf_counter() - started
    print(f"generate {len(prompts)} mixed-prompt rows: batched {timings[16]:.2f} s, one at a time {timings[1]:.2f} s",
          file=sys.stderr)
    result = {
        "base": "tiny-random-llama" if args.tiny else "smollm2-135m-instruct",
        "k": config.num_prompts, "batch": args.batch, "threads": args.threads,
        "train_tokens_per_s_batched": tokens / batched_s,
        "train_tokens_per_s_k_calls": tokens / separate_s,
        "train_ratio": separate_s / batched_s,
        "train_losses_equal": abs(batched_loss - separate_loss) <= 1e-4 * max(1.0, abs(batched_loss)),
        "generate_rows": len(prompts), "generate_s_batched": timings[16], "generate_s_one_row": timings[1],
        "generate_speedup": timings[1] / timings[16],
        "identical_outputs": outputs[16] == outputs[1],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
