"""``dialbench run``: tasks x systems on bundled samples or user data; no arguments = the default suite.

The default suite runs every task on its bundled sample with each of the task's default systems,
one run directory per system under ``runs/default/``, and writes ``leaderboards/default.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cliargs import assignments, check_limit, check_task_names, comma_list, task_paths, typed
from harness.errors import UserError, unknown_name

DEFAULT_OUTPUT = Path("runs/default")
DEFAULT_TABLE = Path("leaderboards/default.md")
DEFAULT_SUITE_SYSTEM_OPTIONS: dict[str, dict[str, object]] = {"zero_shot_lm": {"max_new_tokens": 40}}
"""Settings of the embedded default suite (recorded in each config.json): short replies and a short
memory excerpt keep SmolLM2 on 2 CPU cores within minutes; explicit runs use the systems' defaults."""
DEFAULT_SUITE_TASK_OPTIONS: dict[str, dict[str, object]] = {"memorybank_probe": {"prompt_memory_chars": 600}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", help="comma-separated task ids (default: all)")
    parser.add_argument("--systems", help="comma-separated systems (default: each task's default systems)")
    parser.add_argument("--data", action="append", metavar="TASK=PATH", help="test data of a task (default: bundled sample)")
    parser.add_argument("--train-data", action="append", metavar="TASK=PATH", help="training data of a task")
    parser.add_argument("--protocol", action="append", metavar="TASK=PROTOCOL", help="example-building protocol of a task")
    parser.add_argument("--profile", action="append", metavar="TASK=PROFILE", help="metric profile of a task")
    parser.add_argument("--task-option", action="append", metavar="TASK.KEY=VALUE", dest="task_options",
                        help="task option, e.g. esconv_strategy.expand_contractions=true")
    parser.add_argument("--set", action="append", metavar="SYSTEM.KEY=VALUE", dest="system_options",
                        help="system option, e.g. zero_shot_lm.batch_size=8")
    parser.add_argument("--limit", type=int, help="score only the first N examples of each task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="parent folder of the run directories")
    parser.add_argument("--table", type=Path, help="where to write the markdown leaderboard (default: "
                        f"{DEFAULT_TABLE} for the default output folder, else OUTPUT/leaderboard.md)")
    parser.add_argument("--fresh", action="store_true", help="ignore finished tasks in existing run directories "
                        "(and replace one made with other settings)")


def scoped_options(values: list[str] | None, flag: str, kind: str, names: list[str],
                   known: list[str] | None = None) -> dict[str, dict[str, object]]:
    """Return per-name options from ``NAME.KEY=VALUE`` strings (``--set``, ``--task-option``).

    ``names`` are the ones this run uses, ``known`` every registered one (for did-you-mean)."""
    options: dict[str, dict[str, object]] = {name: {} for name in names}
    for target, value in assignments(values, flag).items():
        name, dot, key = target.partition(".")
        if not dot or not name.strip() or not key.strip():
            raise UserError(f"{flag} expects {kind.upper()}.KEY=VALUE, got '{target}={value}'")
        if name not in options:
            if known is not None and name in known:
                raise UserError(f"{flag} names {kind} '{name}', which is not among the {kind}s run ({', '.join(names)})")
            raise unknown_name(f"{kind} in {flag}", name, known or names)
        options[name][key] = typed(value)
    return options


def run(args: argparse.Namespace) -> int:
    from harness.plugins import SYSTEMS
    from harness.runner import SystemSpec, TaskSpec, run_system
    from leaderboards.render import render_table
    from harness.jsonio import write_atomic
    from harness.plugins import TASKS

    task_names = comma_list(args.tasks) or TASKS.names()
    for name in task_names:
        TASKS.get(name)  # unknown names fail here with the valid choices
    requested_systems = comma_list(args.systems)
    for name in requested_systems:
        SYSTEMS.get(name)
    check_limit(args.limit)
    data = task_paths(args.data, "--data", TASKS.names(), task_names)
    train_data = task_paths(args.train_data, "--train-data", TASKS.names(), task_names)
    protocols = assignments(args.protocol, "--protocol")
    profiles = assignments(args.profile, "--profile")
    check_task_names(protocols, "--protocol", TASKS.names(), task_names)
    check_task_names(profiles, "--profile", TASKS.names(), task_names)
    plan: dict[str, list[str]] = {}
    for task_name in task_names:
        systems = requested_systems or list(TASKS.get(task_name).default_systems)
        for system in systems:
            plan.setdefault(system, []).append(task_name)
    options = scoped_options(args.system_options, "--set", "system", list(plan), SYSTEMS.names())
    task_options = scoped_options(args.task_options, "--task-option", "task", task_names, TASKS.names())
    if not (args.tasks or args.systems or args.data):  # the embedded default suite
        for name, defaults in DEFAULT_SUITE_SYSTEM_OPTIONS.items():
            if name in options:
                options[name] = {**defaults, **options[name]}
        for name, defaults in DEFAULT_SUITE_TASK_OPTIONS.items():
            if name in task_options:
                task_options[name] = {**defaults, **task_options[name]}
    jobs = []
    for system, tasks in plan.items():
        specs = [TaskSpec(name=t, data=data.get(t), train_data=train_data.get(t), protocol=protocols.get(t),
                          limit=args.limit, profile=profiles.get(t), options=task_options[t]) for t in tasks]
        jobs.append((SystemSpec(system, options[system]), specs, args.output / system))
    table_path = args.table or (DEFAULT_TABLE if args.output == DEFAULT_OUTPUT else args.output / "leaderboard.md")
    check_outputs(jobs, table_path, args.seed, args.fresh)
    run_dirs = []
    for system_spec, specs, run_dir in jobs:
        run_system(system_spec, specs, run_dir, seed=args.seed,
                   resume=not args.fresh, command=["dialbench", *sys.argv[1:]])
        run_dirs.append(run_dir)
    table = render_table(run_dirs, fmt="md")
    header = (f"# dialbench leaderboard\n\nMade by `dialbench {' '.join(sys.argv[1:]) or 'run'}`; "
              f"run directories: {', '.join(f'`{d}`' for d in run_dirs)} (config.json in each traces every number).\n\n")
    write_atomic(table_path, header + table)
    print(table, end="")
    print(f"[dialbench] wrote {table_path}", file=sys.stderr)
    return 0


def check_outputs(jobs: list, table_path: Path, seed: int, fresh: bool) -> None:
    """Fail before any work when a run directory or the table cannot be written, or when a run
    directory holds results made with other settings (the new run would silently replace them)."""
    from harness.jsonio import check_output_dir, check_output_file
    from harness.runner import settings_conflict

    for system_spec, specs, run_dir in jobs:
        check_output_dir(run_dir, "run directory")
        conflict = None if fresh else settings_conflict(system_spec, specs, run_dir, seed)
        if conflict:
            raise UserError(f"{run_dir}: holds results made with {conflict}; choose another --output, "
                            "or pass --fresh to replace them")
    check_output_file(table_path, "--table")
