"""``dialbench list tasks|systems|profiles``: registered names, one per line, with a description."""
from __future__ import annotations

import argparse

from harness.errors import UserError

KINDS = ("tasks", "systems", "profiles")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="what to list")
    parser.add_argument("--names-only", action="store_true", help="print only the names")


def _describe(registry, name: str) -> str:
    try:
        return getattr(registry.get(name), "description", "") or ""
    except (ImportError, UserError):
        return "(not importable in this installation)"


def run(args: argparse.Namespace) -> int:
    if args.kind == "tasks":
        from harness.plugins import TASKS as registry
    elif args.kind == "systems":
        from harness.plugins import SYSTEMS as registry
    else:
        from harness.plugins import PROFILES as registry  # a Registry like TASKS and SYSTEMS
    names = registry.names()
    width = max(map(len, names), default=0)
    for name in names:
        print(name if args.names_only else f"{name:<{width}}  {_describe(registry, name)}".rstrip())
    return 0
