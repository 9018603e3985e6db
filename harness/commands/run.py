"""``dialbench run``: tasks x systems on bundled samples or user data; no arguments = the default suite.

The default suite runs every task on its bundled sample with each of the task's default systems and
writes ``leaderboards/default.md`` and the self-contained page ``leaderboards/default.html`` (an HTML
page beside every markdown table). Each system gets its own run directory under ``--output``, named
``<system>-<digest of its settings>`` (system options, task specs, seed), so a changed setting
writes a new directory instead of overwriting an earlier run, and the same command resumes its own.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cliargs import add_task_arguments, comma_list, scoped_options, settings_digest, task_specs
from harness.errors import UserError

DEFAULT_OUTPUT = Path("runs/default")
DEFAULT_TABLE = Path("leaderboards/default.md")
DEFAULT_SUITE_SYSTEM_OPTIONS: dict[str, dict[str, object]] = {"zero_shot_lm": {"max_new_tokens": 40}}
"""Settings of the embedded default suite (recorded in each config.json): short replies and a short
memory excerpt keep SmolLM2 on 2 CPU cores within minutes; explicit runs use the systems' defaults."""
DEFAULT_SUITE_TASK_OPTIONS: dict[str, dict[str, object]] = {"memorybank_probe": {"prompt_memory_chars": 600}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arguments(parser)
    parser.add_argument("--systems", help="comma-separated systems (default: each task's default systems)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="parent folder of the run directories (each named SYSTEM-<settings digest>)")
    parser.add_argument("--table", type=Path, help="where to write the markdown leaderboard (default: "
                        f"{DEFAULT_TABLE} for the default output folder, else OUTPUT/leaderboard.md)")
    parser.add_argument("--fresh", action="store_true", help="ignore finished tasks in existing run directories "
                        "(and replace one made with other settings)")


def run_dir_name(system: str, options: dict[str, object], specs: list, seed: int) -> str:
    """Return ``<system>-<digest>``: the same settings give the same folder, other settings another."""
    from harness.runner import spec_json

    return f"{system}-{settings_digest({'options': options, 'tasks': [spec_json(s) for s in specs], 'seed': seed})}"


def run(args: argparse.Namespace) -> int:
    from harness.jsonio import write_atomic
    from harness.plugins import SYSTEMS, TASKS
    from harness.runner import SystemSpec, run_system
    from leaderboards.render import render_table

    task_names = comma_list(args.tasks) or TASKS.names()
    for name in task_names:
        TASKS.get(name)  # unknown names fail here with the valid choices
    requested_systems = comma_list(args.systems)
    for name in requested_systems:
        SYSTEMS.get(name)
    plan: dict[str, list[str]] = {}
    for task_name in task_names:
        for system in requested_systems or list(TASKS.get(task_name).default_systems):
            plan.setdefault(system, []).append(task_name)
    default_suite = not (args.tasks or args.systems or args.data)
    options = scoped_options(args.system_options, "--set", "system", list(plan), unscoped=True, known=SYSTEMS.names())
    if default_suite:
        for name, defaults in DEFAULT_SUITE_SYSTEM_OPTIONS.items():
            if name in options:
                options[name] = {**defaults, **options[name]}
    specs = {spec.name: spec for spec in
             task_specs(args, task_names, defaults=DEFAULT_SUITE_TASK_OPTIONS if default_suite else None)}
    jobs = []
    for system, tasks in plan.items():
        system_specs = [specs[t] for t in tasks]
        run_dir = args.output / run_dir_name(system, options[system], system_specs, args.seed)
        jobs.append((SystemSpec(system, options[system]), system_specs, run_dir))
    table_path = args.table or (DEFAULT_TABLE if args.output == DEFAULT_OUTPUT else args.output / "leaderboard.md")
    check_outputs(jobs, table_path, args.seed, args.fresh)
    run_dirs = []
    for system_spec, system_specs, run_dir in jobs:
        run_system(system_spec, system_specs, run_dir, seed=args.seed,
                   resume=not args.fresh, command=["dialbench", *sys.argv[1:]])
        run_dirs.append(run_dir)
    table = render_table(run_dirs, fmt="md")
    header = (f"# dialbench leaderboard\n\nMade by `dialbench {' '.join(sys.argv[1:]) or 'run'}`; "
              f"run directories: {', '.join(f'`{d}`' for d in run_dirs)} (config.json in each traces every number).\n\n")
    write_atomic(table_path, header + table)
    html_path = table_path.with_suffix(".html")
    write_atomic(html_path, render_table(run_dirs, fmt="html", published=True))
    print(table, end="")
    print(f"[dialbench] wrote {table_path} and {html_path}", file=sys.stderr)
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
    check_output_file(table_path.with_suffix(".html"), "--table (its .html page)")

