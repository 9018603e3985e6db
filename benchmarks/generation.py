"""Benchmark the generation engine against the papers' style on SmolLM2-135M-Instruct, in one run.

    python benchmarks/generation.py [--prompts 64] [--max-new-tokens 64] [--threads N] [--skip-eval]

1. Builds 64 ConvAI2-style prompts with the ``convai2_persona`` task's own prompt (persona + the
   conversation so far, through the chat template) from ../shared/data/personachat when present,
   else from synthetic PersonaChat-format dialogues.
2. Papers' style: one prompt per ``model.generate`` call, greedy, no cache.
3. Engine: ``harness.generation.Generator`` on the same prompts, greedy, same dtype (float32), no
   cache; the outputs must be identical to step 2's.
4. Achieved model FLOP/s against a float32 torch matmul FLOP/s measured in the same run: what the
   engine executed (its work counters) and the useful-work rate (every prompt and generated token
   through every weight once, plus attention, as one-at-a-time decoding does it).
5. Cold vs warm ``dialbench eval``: the same command twice (empty cache first; the second run
   resumes its run directory), and once more into a new directory, where every output comes from the
   generation cache and only the metrics are recomputed.

The CPU is shared, so only ratios measured side by side in this one run mean anything. The last line
is one JSON object with ``speedup``, ``warm_speedup`` and ``flops_fraction`` among other numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "personachat" / "valid_self_original_no_cands.head200.txt"
MODEL = "embedded:smollm2-135m-instruct"


def synthetic_personachat(path: Path, dialogues: int = 12, turns: int = 7) -> Path:
    """Write PersonaChat-format (ParlAI text) dialogues made from templates, for machines without the data."""
    rng = random.Random(0)
    facts = ["i have two dogs", "i work as a nurse", "i love hiking", "my favorite color is blue", "i play guitar",
             "i grew up on a farm", "i am a vegetarian", "i collect old coins", "i live near the beach", "i am a teacher"]
    openers = ["hi ! how are you today ?", "hello , what do you do for fun ?", "hey there , how was your week ?"]
    questions = ["do you have any pets ?", "what kind of music do you like ?", "where do you live ?",
                 "what do you do for a living ?", "do you like to cook ?", "what are your hobbies ?"]
    answers = ["that sounds great , tell me more .", "i have never tried that , is it fun ?",
               "me too ! we have a lot in common .", "oh nice , i would love to visit someday ."]
    lines = []
    for _ in range(dialogues):
        persona = rng.sample(facts, 4)
        number = 0
        for fact in persona:
            number += 1
            lines.append(f"{number} your persona: {fact}.")
        for turn in range(turns):
            number += 1
            partner = rng.choice(openers) if turn == 0 else rng.choice(answers) + " " + rng.choice(questions)
            lines.append(f"{number} {partner}\t{rng.choice(persona)} . {rng.choice(questions)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_prompts(data: Path, n: int):
    """Return the task and the first ``n`` examples' chat prompts (the `dialbench eval --limit n` workload)."""
    from harness.plugins import TASKS

    task = TASKS.get("convai2_persona")()
    examples = task.build_examples(task.load(data))[:n]
    return [task.prompt(example) for example in examples]


def papers_style(loaded, prompts, max_new_tokens: int) -> tuple[list[str], float]:
    """Return outputs and seconds of one ``generate`` call per prompt (greedy, no batching, no cache)."""
    import torch

    tok, model, outputs = loaded.tokenizer, loaded.model, []
    started = time.perf_counter()
    for prompt in prompts:
        text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tok.pad_token_id)
        outputs.append(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return outputs, time.perf_counter() - started


def matmul_flops(seconds: float = 3.0, size: int = 1024) -> float:
    """Return the best float32 matmul FLOP/s of a square ``size`` product over ~``seconds``."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - started))
    return best


def flop_rates(model) -> tuple[int, int, int]:
    """Return FLOPs per token through the layers, per logit row, and per unit of attention context.

    2 FLOPs per weight of every linear layer but the output projection per token; 2 per output
    projection weight per position whose logits are computed; attention (QK^T and AV) costs
    4 x layers x hidden per attended position.
    """
    import torch

    head = model.get_output_embeddings()
    body = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head)
    config = model.config
    per_context = 4 * config.num_hidden_layers * config.num_attention_heads * (config.hidden_size // config.num_attention_heads)
    return 2 * body, 2 * head.weight.numel(), per_context


def useful_flops(model, prompt_lengths: list[int], output_lengths: list[int]) -> float:
    """Return the FLOPs of pushing each prompt and output token through the model once (no padding,
    no shared prefixes): the work one-prompt-at-a-time decoding does."""
    per_token, per_logit, per_context = flop_rates(model)
    total = 0.0
    for p, g in zip(prompt_lengths, output_lengths):
        total += per_token * (p + g) + per_logit * (1 + g)
        total += per_context * (p * (p + 1) / 2 + g * p + g * (g + 1) / 2)
    return total


def executed_flops(model, stats) -> float:
    """Return the FLOPs the engine really executed (from its work counters: padding and re-runs
    included, shared prefixes computed once)."""
    per_token, per_logit, per_context = flop_rates(model)
    return per_token * stats["work_tokens"] + per_logit * stats["work_logits"] + per_context * stats["work_context"]


def timed_eval(data: Path, n: int, output: Path, cache: Path, env: dict[str, str]) -> tuple[float, dict, str]:
    """Run `dialbench eval` as a user would; return seconds, results.json and stderr."""
    command = [sys.executable, "-m", "harness", "eval", "--model", MODEL, "--tasks", "convai2_persona",
               "--data", f"convai2_persona={data}", "--limit", str(n), "--output", str(output), "--cache", str(cache)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dialbench eval failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, json.loads((output / "results.json").read_text())["results"], done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads for every measurement (default: torch's)")
    parser.add_argument("--skip-eval", action="store_true", help="skip the cold/warm `dialbench eval` runs")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    from harness.generation import GenerationConfig, Generator
    from harness.checkpoints.loader import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="dialbench-bench-"))
    data = SHARED if SHARED.is_file() else synthetic_personachat(work / "synthetic_personachat.txt")
    print(f"data: {data} ({'real' if data == SHARED else 'synthetic'}); threads: {torch.get_num_threads()}")
    loaded = load_model(MODEL, dtype="float32", device="cpu")
    tok = loaded.tokenizer
    prompts = build_prompts(data, args.prompts)
    prompt_lengths = [len(tok(tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
                              add_special_tokens=False).input_ids) for p in prompts]
    print(f"model: {loaded.fingerprint}; {len(prompts)} prompts, {min(prompt_lengths)}-{max(prompt_lengths)} tokens "
          f"(mean {sum(prompt_lengths) / len(prompts):.0f}); max_new_tokens {args.max_new_tokens}")

    peak_before = matmul_flops()
    batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    engine = Generator(loaded.model, tok, fingerprint=loaded.fingerprint, batch_size=batch_size, progress=False)
    started = time.perf_counter()
    engine_out = engine.generate(prompts, GenerationConfig(max_new_tokens=args.max_new_tokens))
    engine_s = time.perf_counter() - started
    print(f"engine: {engine_s:.1f} s ({dict(engine.stats)})")
    base_out, base_s = papers_style(loaded, prompts, args.max_new_tokens)
    print(f"papers' style (one prompt per generate call): {base_s:.1f} s")
    peak_after = matmul_flops()
    mismatches = [i for i, (a, b) in enumerate(zip(engine_out, base_out)) if a != b]
    for i in mismatches[:3]:
        print(f"  MISMATCH prompt {i}:\n    engine: {engine_out[i]!r}\n    papers: {base_out[i]!r}")
    print(f"identical outputs: {len(prompts) - len(mismatches)}/{len(prompts)}")

    output_lengths = [len(tok(o, add_special_tokens=False).input_ids) + 1 for o in base_out]
    work_flops = useful_flops(loaded.model, prompt_lengths, output_lengths)
    done_flops = executed_flops(loaded.model, engine.stats)
    peak = (peak_before + peak_after) / 2
    generated = sum(output_lengths)
    result = {
        "speedup": round(base_s / engine_s, 2),
        "identical": not mismatches, "mismatches": len(mismatches), "prompts": len(prompts),
        "engine_s": round(engine_s, 2), "papers_style_s": round(base_s, 2),
        "engine_tok_s": round(generated / engine_s, 1), "papers_style_tok_s": round(generated / base_s, 1),
        "near_ties_rerun": engine.stats["near_ties"],
        "prefill_tokens_computed": engine.stats["prefill_tokens"], "prompt_tokens": sum(prompt_lengths),
        "engine_gflops": round(done_flops / engine_s / 1e9, 2),
        "engine_effective_gflops": round(work_flops / engine_s / 1e9, 2),
        "papers_style_gflops": round(work_flops / base_s / 1e9, 2),
        "matmul_gflops": round(peak / 1e9, 2), "flops_fraction": round(done_flops / engine_s / peak, 3),
        "effective_flops_fraction": round(work_flops / engine_s / peak, 3),
        "threads": torch.get_num_threads(), "dtype": "float32", "max_new_tokens": args.max_new_tokens,
    }
    print(f"throughput: engine {result['engine_tok_s']} tok/s vs papers' style {result['papers_style_tok_s']} tok/s "
          f"-> speedup {result['speedup']}x")
    print(f"model FLOP/s: engine executes {result['engine_gflops']} GFLOP/s (useful work rate "
          f"{result['engine_effective_gflops']} GFLOP/s, shared prefixes counted as if recomputed), papers' style "
          f"{result['papers_style_gflops']} GFLOP/s; torch float32 matmul {result['matmul_gflops']} GFLOP/s "
          f"-> fraction {result['flops_fraction']} (effective {result['effective_flops_fraction']})")

    if not args.skip_eval:
        env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
        cache = work / "generations.sqlite"
        cold_s, cold_results, _ = timed_eval(data, args.prompts, work / "run", cache, env)
        warm_s, warm_results, warm_log = timed_eval(data, args.prompts, work / "run", cache, env)
        other_s, other_results, other_log = timed_eval(data, args.prompts, work / "other-dir", cache, env)
        regenerated = " computed" in warm_log and "0 computed" not in warm_log
        other_regenerated = "0 computed" not in other_log
        result.update({"cold_eval_s": round(cold_s, 2), "warm_eval_s": round(warm_s, 2),
                       "warm_speedup": round(cold_s / warm_s, 2), "warm_regenerated": regenerated,
                       "warm_results_identical": cold_results == warm_results,
                       "warm_new_dir_eval_s": round(other_s, 2), "warm_new_dir_speedup": round(cold_s / other_s, 2),
                       "warm_new_dir_regenerated": other_regenerated,
                       "warm_new_dir_results_identical": cold_results == other_results})
        print(f"dialbench eval: cold {cold_s:.1f} s; same command again {warm_s:.1f} s -> {result['warm_speedup']}x "
              f"(run directory resumed, nothing regenerated: {not regenerated}); into a new directory "
              f"{other_s:.1f} s -> {result['warm_new_dir_speedup']}x (all outputs from the generation cache: "
              f"{not other_regenerated}, metrics recomputed); results identical: "
              f"{cold_results == warm_results == other_results}")
    else:
        result["warm_speedup"] = None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
