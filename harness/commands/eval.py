"""``dialbench eval``: benchmark one checkpoint on chosen tasks and print the table.

    dialbench eval --model SOURCE --tasks T1,T2 [--system NAME] [--data TASK=PATH ...] [--limit N]
                   [--batch-size N|auto] [--dtype auto|float32|bfloat16|float16] [--device auto|cpu|cuda]
                   [--output DIR] [--seed N] [--no-cache] [--trust-remote-code] [--max-new-tokens N]
                   [--protocol TASK=P] [--profile TASK=P] [--task-option TASK.KEY=V] [--train-data TASK=PATH]
                   [--data-format TASK=FORMAT] [--set [SYSTEM.]KEY=VALUE ...]

The task flags are ``run``'s (``harness.cliargs.add_task_arguments``), so they mean the same in both.

SOURCE is anything ``harness.checkpoints.source`` accepts (a folder, a .gguf file, an adapter, a DeepSpeed
checkpoint, a hub id when online, ``embedded:smollm2-135m-instruct``). The default system is
``zero_shot_lm``, the task's prompt-based system. Generations are cached (``$DIALBENCH_CACHE`` or
``~/.cache/dialbench/generations.sqlite``), so re-running the same command regenerates nothing and a
killed run resumes where it stopped; the default run directory is named after the model's weights and
the options, so the same command finds its finished tasks and only prints the table again.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from harness.cliargs import add_task_arguments, comma_list, scoped_options, settings_digest, task_specs
from harness.errors import UserError

DEFAULT_SYSTEM = "zero_shot_lm"

FLAG_OPTIONS = {
    "batch_size": "--batch-size", "dtype": "--dtype", "device": "--device", "max_new_tokens": "--max-new-tokens",
    "no_cache": "--no-cache", "trust_remote_code": "--trust-remote-code", "cache_path": "--cache",
}
"""System options that have their own flag (passed only when given, so other systems can refuse them)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct", metavar="SOURCE",
                        help="model folder, .gguf file, adapter folder, DeepSpeed checkpoint, hub id, or "
                             "embedded:smollm2-135m-instruct (the default)")
    add_task_arguments(parser, tasks_required=True)
    parser.add_argument("--system", default=DEFAULT_SYSTEM, help=f"system that runs the model (default {DEFAULT_SYSTEM})")
    parser.add_argument("--batch-size", dest="batch_size", help="rows per batch, or 'auto' (default)")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"),
                        help="weights dtype (default auto: float32 on CPU, bfloat16 on a capable GPU)")
    parser.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, help="generation length cap (default 64)")
    parser.add_argument("--output", type=Path,
                        help="run directory (default runs/eval-<model>-<digest of model weights and options>; "
                             "re-running a command resumes it)")
    parser.add_argument("--no-cache", dest="no_cache", action="store_true", help="neither read nor write the generation cache")
    parser.add_argument("--cache", dest="cache_path", type=Path, help="generation cache file (default in the cache folder)")
    parser.add_argument("--trust-remote-code", dest="trust_remote_code", action="store_true",
                        help="allow model code from the checkpoint and full unpickling (only for sources you trust)")
    parser.add_argument("--format", dest="fmt", default="md", choices=("md", "csv", "latex", "json"), help="table format")


def system_options(args: argparse.Namespace, accepted: tuple[str, ...], system: str) -> dict[str, Any]:
    """Return the system's options from the flags given; a flag the system cannot take is a UserError."""
    options: dict[str, Any] = {"model": args.model}
    for name, flag in FLAG_OPTIONS.items():
        value = getattr(args, name, None)
        if value is None or value is False:
            continue
        if name not in accepted:
            raise UserError(f"{flag} does not apply to system '{system}' (its options: {', '.join(accepted)})")
        options[name] = str(value) if isinstance(value, Path) else value
    if "seed" in accepted:
        options["seed"] = args.seed
    options.update(scoped_options(args.system_options, "--set", "system", [system], unscoped=True)[system])
    return options


def default_output(model: str, weights: str, request: dict[str, Any]) -> Path:
    """Return ``runs/eval-<model name>-<digest>``, the same folder for the same command and weights.

    Re-running a command therefore resumes its run directory (finished tasks are kept by the
    runner); other options, data or retrained weights give another folder.
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model.rstrip("/")).name or model).strip("-")[:40]
    return Path("runs") / f"eval-{name}-{settings_digest({'weights': weights, **request})}"


def weights_changed(output: Path, weights: str) -> bool:
    """Return True when ``output`` holds tasks scored with other weights than ``weights``.

    The runner keeps finished tasks of a matching configuration, and the configuration names the
    model by path; a checkpoint retrained into the same folder must not be mistaken for the old one.
    """
    from harness.rundir import read_config

    config = read_config(output)
    if config is None:
        return False
    recorded = [(run.get("system") or {}).get("fingerprint") for run in config.task_runs.values()]
    return any(f and f.split("|")[0] != weights for f in recorded)


def run(args: argparse.Namespace) -> int:
    from harness.plugins import SYSTEMS
    from harness.jsonio import check_output_dir
    from harness.runner import SystemSpec, run_system, settings_conflict, spec_json
    from leaderboards.render import render_table
    from harness.checkpoints.fingerprint import weights_id
    from harness.checkpoints.source import parse_source
    from harness.plugins import TASKS

    task_names = comma_list(args.tasks)
    if not task_names:
        raise UserError("--tasks is empty; give comma-separated task ids (see `dialbench list tasks`)")
    for name in task_names:
        TASKS.get(name)
    specs = task_specs(args, task_names)
    batch_size = args.batch_size
    if batch_size is not None and batch_size != "auto" and not (batch_size.isdigit() and int(batch_size) > 0):
        raise UserError(f"--batch-size must be a positive integer or 'auto', got '{batch_size}'")
    source = parse_source(args.model)  # a missing path or bad alias fails before any task starts
    weights = weights_id(source)
    system_cls = SYSTEMS.get(args.system)
    options = system_options(args, tuple(system_cls.option_names), args.system)
    request = {"system": args.system, "options": options, "tasks": [spec_json(s) for s in specs], "seed": args.seed}
    output = args.output or default_output(args.model, weights, request)
    fresh = weights_changed(output, weights)
    if fresh:
        print(f"[dialbench] {output} was scored with other weights; scoring every task again", file=sys.stderr)
    check_output_dir(output, "run directory")
    if args.cache_path and not args.no_cache and "cache_path" in system_cls.option_names:
        from harness.generation.cache import GenerationCache

        GenerationCache(args.cache_path, explicit=True).close()  # a damaged named cache stops the run here
    conflict = None if fresh else settings_conflict(SystemSpec(args.system, options), specs, output, args.seed)
    if conflict:
        raise UserError(f"{output}: holds results made with {conflict}; choose another --output")
    run_system(SystemSpec(args.system, options), specs, output, seed=args.seed, resume=not fresh,
               command=["dialbench", *sys.argv[1:]])
    print(render_table([output], fmt=args.fmt), end="")
    from harness.rundir import read_results

    warnings = [f"{task}: {w}" for task, r in read_results(output).tasks.items() for w in r.warnings]
    flagged = f"; WARNING {'; '.join(warnings)}" if warnings else ""
    print(f"[dialbench] wrote {output}{flagged}", file=sys.stderr)
    return 0
