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


def _details(kind: str, registry, name: str) -> list[str]:
    """Return the indented lines that say how to drive a task (formats, protocols, options) or a
    system (options), so ``--data-format``, ``--protocol``, ``--task-option`` and ``--set`` values
    can be found without reading the code."""
    try:
        item = registry.get(name)
    except (ImportError, UserError):
        return []
    if kind == "tasks":
        options = ", ".join(f"{key}={spec.default!r}" + (f" ({'|'.join(spec.choices)})" if spec.choices else "")
                            for key, spec in item.option_specs.items()) or "none"
        return [f"formats: {', '.join(item.formats) or 'any'}; protocols: {', '.join(item.protocols)}; "
                f"profile: {item.default_profile}", f"options: {options}"]
    if kind == "systems":
        return [f"options: {', '.join(item.option_names) or 'none'}"]
    return []


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
        if not args.names_only:
            for line in _details(args.kind, registry, name):
                print(f"{'':<{width}}    {line}")
    return 0
