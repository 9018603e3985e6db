"""Parsing shared by several commands: ``TASK=PATH`` pairs, comma lists, ``KEY=VALUE`` options."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.errors import UserError, unknown_name
from harness.jsonio import check_input


def comma_list(value: str | None) -> list[str]:
    """Return the non-empty items of a comma-separated list."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def assignments(values: Iterable[str] | None, flag: str) -> dict[str, str]:
    """Return ``{KEY: VALUE}`` from ``KEY=VALUE`` strings; a value without '=' is a UserError."""
    pairs: dict[str, str] = {}
    for value in values or ():
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise UserError(f"{flag} expects KEY=VALUE, got '{value}'")
        pairs[key.strip()] = rest.strip()
    return pairs


def task_paths(values: Iterable[str] | None, flag: str, known_tasks: Sequence[str],
               selected: Sequence[str] | None = None) -> dict[str, Path]:
    """Return ``{task: Path}`` from ``TASK=PATH`` strings, checking task names and that paths exist.

    A path must be a readable file or folder: a FIFO, a symlink loop or a dangling link is named
    as such here, before any task starts.
    """
    paths = {}
    for task, path in assignments(values, flag).items():
        check_task_names([task], flag, known_tasks, selected)
        try:
            check_input(path, "data")
        except UserError as err:
            raise UserError(f"{err} ({flag} {task}=...)") from None
        paths[task] = Path(path)
    return paths


def check_task_names(names: Iterable[str], flag: str, known_tasks: Sequence[str],
                     selected: Sequence[str] | None = None) -> None:
    """Raise a UserError for a task id (in ``--profile TASK=...`` and alike) that is unknown, with
    a did-you-mean, or that is not one of the ``selected`` tasks (it would be silently ignored)."""
    for name in names:
        if name not in known_tasks:
            raise unknown_name(f"task in {flag}", name, known_tasks)
        if selected is not None and name not in selected:
            raise UserError(f"{flag} names task '{name}', which is not in --tasks ({', '.join(selected)})")


def check_limit(limit: int | None) -> int | None:
    """Return ``--limit`` if it is a positive count (a negative one would slice from the end)."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    return limit


def typed(value: str) -> Any:
    """Return ``value`` as int, float or bool when it looks like one (for --set KEY=VALUE)."""
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


# ---- the task flags `run` and `eval` share --------------------------------------------------------

def add_task_arguments(parser: Any, *, tasks_required: bool = False) -> None:
    """Add the flags that say which tasks run on which data and how they are scored.

    ``run`` and ``eval`` both call this, so a flag means the same in both (MAGIC's test rule is
    ``--protocol esconv_strategy=last`` in either).
    """
    parser.add_argument("--tasks", required=tasks_required,
                        help="comma-separated task ids" + ("" if tasks_required else " (default: all)"))
    parser.add_argument("--data", action="append", metavar="TASK=PATH", help="test data of a task (default: bundled sample)")
    parser.add_argument("--train-data", action="append", metavar="TASK=PATH", help="training data of a task")
    parser.add_argument("--data-format", action="append", dest="formats", metavar="TASK=FORMAT",
                        help="input format of a task's data (default: detected; see `dialbench list tasks`)")
    parser.add_argument("--protocol", action="append", metavar="TASK=PROTOCOL", help="example-building protocol of a task")
    parser.add_argument("--profile", action="append", metavar="TASK=PROFILE", help="metric profile of a task")
    parser.add_argument("--task-option", action="append", metavar="TASK.KEY=VALUE", dest="task_options",
                        help="task option, e.g. esconv_strategy.expand_contractions=true")
    parser.add_argument("--set", action="append", metavar="[SYSTEM.]KEY=VALUE", dest="system_options",
                        help="system option, e.g. zero_shot_lm.num_beams=4; without 'SYSTEM.' it applies to every "
                             "system of the run")
    parser.add_argument("--limit", type=int, help="score only the first N examples of each task (a subset: "
                        "no delta to published numbers is printed)")
    parser.add_argument("--seed", type=int, default=0)


def scoped_options(values: Iterable[str] | None, flag: str, kind: str, names: Sequence[str], *,
                   unscoped: bool = False, known: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Return per-name options from ``NAME.KEY=VALUE`` strings (``--set``, ``--task-option``).

    With ``unscoped``, a plain ``KEY=VALUE`` applies to every name. ``names`` are the ones this run
    uses, ``known`` every registered one (a known name that is not run is its own error).
    """
    options: dict[str, dict[str, Any]] = {name: {} for name in names}
    for target, value in assignments(values, flag).items():
        name, dot, key = target.partition(".")
        if not dot and unscoped:
            for scoped in options.values():
                scoped[target] = typed(value)
            continue
        if not dot or not name.strip() or not key.strip():
            raise UserError(f"{flag} expects {kind.upper()}.KEY=VALUE, got '{target}={value}'")
        if name not in options:
            if known is not None and name in known:
                raise UserError(f"{flag} names {kind} '{name}', which is not among the {kind}s run ({', '.join(names)})")
            raise unknown_name(f"{kind} in {flag}", name, known or names)
        options[name][key] = typed(value)
    return options


def task_specs(args: Any, task_names: Sequence[str], *, defaults: dict[str, dict[str, Any]] | None = None) -> list[Any]:
    """Return one ``runner.TaskSpec`` per task from the shared task flags; names are checked first."""
    from harness.plugins import TASKS
    from harness.runner import TaskSpec

    known = TASKS.names()
    check_limit(getattr(args, "limit", None))
    data = task_paths(args.data, "--data", known)
    train = task_paths(args.train_data, "--train-data", known)
    per_task = {flag: assignments(values, flag) for flag, values in
                (("--protocol", args.protocol), ("--profile", args.profile), ("--data-format", args.formats))}
    for flag, mapping in [("--data", data), ("--train-data", train), *per_task.items()]:
        check_task_names(mapping, flag, known, task_names)
    options = scoped_options(args.task_options, "--task-option", "task", list(task_names), known=known)
    for name, extra in (defaults or {}).items():
        if name in options:
            options[name] = {**extra, **options[name]}
    return [TaskSpec(name=t, data=data.get(t), train_data=train.get(t), protocol=per_task["--protocol"].get(t),
                     limit=args.limit, fmt=per_task["--data-format"].get(t), profile=per_task["--profile"].get(t),
                     options=options[t]) for t in task_names]


def settings_digest(settings: Any) -> str:
    """Return a short digest of a run's settings: the run directory name, so other settings never
    overwrite an earlier run."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
