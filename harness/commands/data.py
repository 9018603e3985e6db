"""``dialbench data inspect TASK PATH``: read a dataset with a task's loader and print its counts.

This is how a user checks that a downloaded file is read as the paper read it before spending
compute on it: the counts (dialogues, turns, examples, skipped examples and why; users, questions
and exchanges for MemoryBank) are the ones the tests pin on the real data. Malformed input stops
with ``PATH:LINE: field: problem`` and exit status 2, like every user error.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.cliargs import assignments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    inspect = sub.add_parser("inspect", help="load PATH with TASK's loader and print counts",
                             description="load PATH with TASK's loader and print counts")
    inspect.add_argument("task", help="task id (see `dialbench list tasks`)")
    inspect.add_argument("path", type=Path, help="data file (MemoryBank: the store file or its folder)")
    inspect.add_argument("--protocol", help="example-building protocol (default: the task's first)")
    inspect.add_argument("--format", dest="fmt", metavar="FORMAT", help="input format (default: detected from the content)")
    inspect.add_argument("--option", action="append", metavar="KEY=VALUE", help="task option, repeatable")
    inspect.add_argument("--json", action="store_true", help="print exactly one JSON object")


def inspect_data(task_name: str, path: Path, protocol: str | None = None, fmt: str | None = None,
                 options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the counts of ``path`` read and cut by ``task_name`` (raises UserError/DataError)."""
    from harness.errors import UserError
    from harness.plugins import TASKS

    task = TASKS.get(task_name)(protocol=protocol, **(options or {}))
    if not Path(path).exists():
        raise UserError(f"{path}: file not found")
    from harness.runner import load_dialogues

    dialogues = load_dialogues(task, Path(path), fmt)
    examples = task.build_examples(dialogues)
    counts = task.counts(dialogues, examples) if hasattr(task, "counts") else {
        "dialogues": len(dialogues), "turns": sum(len(d.turns) for d in dialogues), "examples": len(examples)}
    labels = Counter(e.label for e in examples if e.label)
    summary: dict[str, Any] = {"task": task.name, "path": str(path), "protocol": task.protocol, **counts}
    if labels:
        summary["labels"] = dict(labels.most_common())
    summary["with_references"] = sum(1 for e in examples if e.references)
    return summary


def run(args: argparse.Namespace) -> int:
    options = {k: v for k, v in assignments(args.option, "--option").items()}
    summary = inspect_data(args.task, args.path, args.protocol, args.fmt, options)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, sort_keys=False))
        return 0
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if isinstance(value, dict):
            print(f"{key:<{width}}  " + (", ".join(f"{k}: {v}" for k, v in value.items()) or "none"))
        else:
            print(f"{key:<{width}}  {value}")
    return 0
