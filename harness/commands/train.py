"""``dialbench train SYSTEM``: train a system with one of its presets into a checkpoint directory.

Multi-process runs use the same command under a launcher, e.g.
``deepspeed --num_gpus 4 --no_local_rank --module harness train comedy --preset paper --deepspeed zero2 ...``
or ``torchrun --nproc_per_node 4 -m harness train ...``; every process runs this command and the
Trainer coordinates them (rank 0 writes the model, tokenizer and metadata).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the train command's arguments."""
    parser.add_argument("system", help="system to train (e.g. gpt2_dialogue)")
    parser.add_argument("--preset", default="tiny", help="recipe variant: tiny (CPU minutes, random init) or paper (published recipe)")
    parser.add_argument("--data", action="append", metavar="TASK=PATH", help="training data file read by TASK's loader (repeatable)")
    parser.add_argument("--valid", action="append", metavar="TASK=PATH", help="separate validation file (default: the recipe's split of --data)")
    parser.add_argument("--deepspeed", metavar="zero2|zero3|CONFIG.json", help="train under DeepSpeed with a shipped or own config")
    parser.add_argument("--output", default=None, help="output directory (default runs/train/SYSTEM-PRESET)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (0: save the untrained model)")
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--base", default=None, help="base checkpoint name or path overriding the preset's (e.g. a local gpt2)")
    parser.add_argument("--stage", default=None, help="stage of a multi-stage recipe (comedy: sft, then dpo with --base STAGE1_DIR)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a training setting (learning_rate=1e-4) or a recipe switch (comedy.pad_loss=released)")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")


def run(args: argparse.Namespace) -> int:
    """Train and print a one-line JSON summary; user errors exit 2 via the CLI."""
    from harness.cliargs import assignments, task_paths, typed
    from harness.plugins import TASKS
    from training.recipe import TrainingData
    from training.run import get_recipe, train

    get_recipe(args.system)  # unknown or untrainable system fails before any data is read
    data = TrainingData(train=task_paths(args.data, "--data", TASKS.names()),
                        valid=task_paths(args.valid, "--valid", TASKS.names()))
    output = Path(args.output or Path("runs") / "train" / f"{args.system}-{args.preset}")
    overrides = {key: typed(value) for key, value in assignments(args.set, "--set").items()}
    summary = train(args.system, data, output, preset=args.preset, deepspeed=args.deepspeed, resume=args.resume,
                    max_steps=args.max_steps, seed=args.seed, base=args.base, overrides=overrides,
                    report_to=() if args.no_tensorboard else ("tensorboard",), stage=args.stage)
    if summary.get("is_main_process", True):
        brief = {key: summary.get(key) for key in ("global_step", "train_loss", "best_eval_loss", "train_runtime_s", "tokens_per_s")}
        evals = summary.get("evaluations") or []
        ppls = [entry["eval_ppl"] for entry in evals if "eval_ppl" in entry]  # DPO evaluations have none
        if ppls:
            brief["eval_ppl"] = min(ppls)
        print(json.dumps({"output": str(output), **brief}), file=sys.stdout)
    return 0
