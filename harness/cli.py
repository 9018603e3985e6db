"""The ``dialbench`` command line: one sub-command per module in ``harness/commands``.

Each command module defines ``add_arguments(parser)`` and ``run(args) -> int`` and ``HELP``; modules
are imported only when their command runs, so ``dialbench list`` starts fast. User errors print one
line on stderr and exit 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from harness.errors import UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("harness.commands.run", "run tasks x systems and write run directories (no args: default suite)"),
    "eval": ("harness.commands.eval", "benchmark a checkpoint on chosen tasks"),
    "list": ("harness.commands.list", "list tasks, systems or metric profiles"),
    "table": ("harness.commands.table", "render run directories as one leaderboard table"),
    "score": ("harness.commands.score", "score hypothesis/reference files with a metric profile"),
    "compare": ("harness.commands.compare", "paired bootstrap comparison of two runs"),
    "regress": ("harness.commands.regress", "fail (exit 1) when a metric dropped significantly beyond tolerance"),
    "reproduce": ("harness.commands.reproduce", "reproduce a paper's table: ours beside the published numbers"),
    "data": ("harness.commands.data", "inspect a dataset with a task's loader"),
    "train": ("harness.commands.train", "train a system (tiny or paper preset)"),
}


def build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, object | None]:
    """Return the parser; only the chosen command's module is imported to add its arguments."""
    parser = argparse.ArgumentParser(prog="dialbench", description="Benchmark long-term-memory and persona dialogue systems.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
    return parser, module


def strip_launcher_arguments(argv: list[str]) -> list[str]:
    """Drop ``--local_rank=N`` / ``--local-rank N``, which the ``deepspeed`` launcher adds in front of
    the command; the rank is also in the LOCAL_RANK environment variable, where training reads it."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--local_rank", "--local-rank"):
            skip = True
            continue
        if arg.startswith(("--local_rank=", "--local-rank=")):
            continue
        out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dialbench`` console script and ``python -m harness``."""
    argv = strip_launcher_arguments(list(sys.argv[1:] if argv is None else argv))
    from harness.console import keep_stdout_for_results

    keep_stdout_for_results()
    try:
        parser, module = build_parser(argv)
        args = parser.parse_args(argv)
        if module is None:
            parser.print_help()
            return 0 if not argv else 2
        return int(module.run(args) or 0)
    except UserError as err:
        print(f"dialbench: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("dialbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
