"""``dialbench reproduce PAPER``: train (or load) the paper's system, evaluate it the paper's way and
print the paper's table with our number, the published one, the delta and whether recipes match.

What runs comes from the paper's recipe file (``leaderboards/recipes/PAPER.json``,
``leaderboards/paper_recipes.py``). Data files are checked against the paper's expected counts; a
mismatch is said in one line and kept in the table's notes (the numbers are then not on the
paper's data). Without ``--data`` a task uses its bundled synthetic sample (a smoke run; numbers
mean nothing). A system that trains on the same file it is evaluated on gets the recipe's
``holdout``: the last fraction of dialogues is evaluated, the rest trains (the paper's unshuffled
head split).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from harness.cliargs import comma_list, task_paths
from harness.errors import UserError
from harness.jsonio import write_atomic, write_json

DEFAULT_OUTPUT = Path("runs/reproduce")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paper", metavar="PAPER", nargs="?", help="paper recipe name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the paper recipes and what each needs")
    parser.add_argument("--data", action="append", metavar="TASK=PATH", help="the paper's evaluation file of a task")
    parser.add_argument("--preset", default="tiny", help="training preset of trained systems (tiny or paper)")
    parser.add_argument("--model", metavar="SOURCE", help="evaluate this checkpoint instead of training "
                        "(a trained directory, hub id or embedded:NAME)")
    parser.add_argument("--systems", help="comma-separated subset of the recipe's systems")
    parser.add_argument("--output", type=Path, help=f"output folder (default: {DEFAULT_OUTPUT}/PAPER)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="retrain and re-evaluate even if outputs exist")


def list_recipes() -> str:
    """Return the ``--list`` table: each recipe with its data, weights, GPU need and tiny CPU time."""
    from tabulate import tabulate

    from leaderboards.paper_recipes import get_recipe, recipe_names

    body = []
    for name in recipe_names():
        recipe = get_recipe(name)
        data = "; ".join(f"{t.task}: {t.data_what}" + (f" ({', '.join(f'{v} {k}' for k, v in t.expected.items())})"
                                                      if t.expected else "") for t in recipe.tasks)
        weights = "; ".join(f"{s.name}: {s.weights or ('trained here (' + '/'.join(s.presets) + ')' if s.presets else 'none')}"
                            for s in recipe.systems)
        gpu = ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in recipe.gpu.items()) or "no"
        body.append([name, recipe.title, data, weights, gpu, f"~{recipe.tiny_cpu_minutes:g} min"])
    return tabulate(body, headers=["paper", "what", "data", "weights", "GPU", "tiny on 2 CPU cores (estimate)"],
                    tablefmt="github") + "\n"


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_recipes(), end="")
        return 0
    if not args.paper:
        raise UserError("reproduce needs PAPER (see `dialbench reproduce --list`)")
    from harness.plugins import TASKS
    from leaderboards.paper_recipes import get_recipe

    recipe = get_recipe(args.paper)
    data = task_paths(args.data, "--data", TASKS.names())
    for task in data:
        if task not in {t.task for t in recipe.tasks}:
            raise UserError(f"--data {task}=...: paper '{recipe.paper}' has no task '{task}'; its tasks: "
                            + ", ".join(t.task for t in recipe.tasks))
    wanted = comma_list(args.systems)
    for name in wanted:
        if name not in {s.name for s in recipe.systems}:
            raise UserError(f"--systems: paper '{recipe.paper}' has no system '{name}'; its systems: "
                            + ", ".join(s.name for s in recipe.systems))
    systems = [s for s in recipe.systems if not wanted or s.name in wanted]
    output = args.output or DEFAULT_OUTPUT / recipe.paper
    result = reproduce(recipe, systems, data, output, preset=args.preset, model=args.model, seed=args.seed,
                       fresh=args.fresh)
    print(result["markdown"], end="")
    print(f"[dialbench] wrote {output}/reproduce.md, reproduce.json and reproduce.html", file=sys.stderr)
    return 0


def reproduce(recipe: Any, systems: list[Any], data: dict[str, Path], output: Path, *, preset: str = "tiny",
              model: str | None = None, seed: int = 0, fresh: bool = False) -> dict[str, Any]:
    """Run ``systems`` of ``recipe`` on its tasks and return ``{"lines", "notes", "markdown"}``;
    writes reproduce.md/json/html in ``output`` beside one run directory per system."""
    from harness.runner import SystemSpec, TaskSpec, run_system
    from leaderboards.paper_recipes import human_judged
    from leaderboards.published import load_published
    from leaderboards.render import collect_rows
    from leaderboards.reproduce_table import as_json, compare_rows, render_markdown

    output.mkdir(parents=True, exist_ok=True)
    notes: dict[str, list[str]] = {}
    for task in recipe.tasks:
        notes[task.task] = [check_counts(task, data.get(task.task))]
    run_dirs = []
    for system in systems:
        options = dict(system.options)
        specs = []
        trained = bool(system.presets) and model is None
        for task in recipe.tasks:
            test_path, train_path = data.get(task.task), None
            if trained and test_path is not None:
                if not task.holdout:
                    raise UserError(f"{recipe.path.name}: tasks[{task.task}].data.holdout: missing; '{system.name}' "
                                    "would train on the file it is evaluated on")
                train_path, test_path = holdout_split(test_path, task.holdout, output / "data")
                notes[task.task].append(f"{system.name}: trained on the first {1 - task.holdout:.0%} of the "
                                        f"dialogues of the given file, evaluated on the last {task.holdout:.0%}")
            specs.append(TaskSpec(name=task.task, data=test_path, protocol=task.protocol, profile=task.profile,
                                  options=dict(task.options), train_data=train_path))
        if model is not None and (system.presets or "model" in options):
            options["model"] = model
        elif trained:
            if preset not in system.presets:
                raise UserError(f"paper '{recipe.paper}': system '{system.name}' has no preset '{preset}' here; "
                                f"valid: {', '.join(system.presets)}")
            options["model"] = str(train_system(system.name, preset, recipe, specs, output, seed, fresh))
        run_dir = output / system.name
        run_system(SystemSpec(system.name, options), specs, run_dir, seed=seed, resume=not fresh,
                   command=["dialbench", "reproduce", *sys.argv[2:]])
        run_dirs.append(run_dir)
    rows = collect_rows(run_dirs)
    entries = {(e.task, e.system): e for e in load_published()}
    human = human_judged()
    lines = []
    for task in recipe.tasks:
        ours = [r for r in rows if r.task == task.task]
        for comparison in task.compare:
            lines += compare_rows(ours, comparison, entries.get((task.task, comparison.published)),
                                  human.get((task.task, comparison.published)))
    header = (f"# {recipe.title}\n\n`dialbench reproduce {recipe.paper}` ({'model ' + model if model else 'preset ' + preset}); "
              f"run directories: {', '.join(f'`{d}`' for d in run_dirs)}.\n\n")
    markdown = header + render_markdown(lines, notes)
    write_atomic(output / "reproduce.md", markdown)
    write_json(output / "reproduce.json", {"paper": recipe.paper, "preset": preset, "model": model,
                                            "run_dirs": [str(d) for d in run_dirs], "notes": notes,
                                            "lines": as_json(lines)})
    from leaderboards.html import render_html

    write_atomic(output / "reproduce.html", render_html(rows, title=recipe.title, reproduce=lines, notes=notes))
    return {"lines": lines, "notes": notes, "markdown": markdown, "run_dirs": run_dirs}


def check_counts(task: Any, path: Path | None) -> str:
    """Return the one-line data note of a task: its counts against the paper's expected counts."""
    from harness.plugins import TASKS

    if path is None:
        return f"{task.task}: no --data given: the bundled synthetic sample was used, so the numbers mean nothing"
    instance = TASKS.get(task.task)(protocol=task.protocol, **dict(task.options))
    dialogues = instance.load(path)
    counts = {"dialogues": len(dialogues), "turns": sum(len(d.turns) for d in dialogues),
              "examples": len(instance.build_examples(dialogues))}
    wrong = [f"{counts[k]} {k} (the paper's data has {v})" for k, v in task.expected.items() if counts[k] != v]
    if wrong:
        line = f"{task.task}: {path} has {', '.join(wrong)}: these numbers are not on the paper's data"
        print(f"[dialbench] warning: {line}", file=sys.stderr)
        return line
    return f"{task.task}: {path} matches the paper's counts ({', '.join(f'{v} {k}' for k, v in counts.items())})"


DIALOGUE_START = re.compile(r"^1 ")


def holdout_split(path: Path, holdout: float, folder: Path) -> tuple[Path, Path]:
    """Return (train file, evaluation file): the file's dialogues in order, the last ``holdout``
    fraction evaluated. Only ParlAI text (a dialogue starts at line number 1) can be cut as text."""
    from harness.jsonio import read_text
    from training.recipe import split_head

    text = read_text(path)
    if text.lstrip()[:1] in "{[":
        raise UserError(f"{path}: only ParlAI text files can be split for training and evaluation; "
                        "give the evaluation file with --data and train separately")
    dialogues: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if DIALOGUE_START.match(line) or not dialogues:
            dialogues.append([])
        dialogues[-1].append(line)
    head, tail = split_head(dialogues, 1 - holdout)
    if not tail:
        raise UserError(f"{path}: too few dialogues ({len(dialogues)}) to hold out {holdout:.0%} for evaluation")
    folder.mkdir(parents=True, exist_ok=True)
    train_path, test_path = folder / f"{path.stem}.train{path.suffix}", folder / f"{path.stem}.heldout{path.suffix}"
    write_atomic(train_path, "".join(line for d in head for line in d))
    write_atomic(test_path, "".join(line for d in tail for line in d))
    return train_path, test_path


def train_system(system: str, preset: str, recipe: Any, specs: list[Any], output: Path, seed: int, fresh: bool) -> Path:
    """Train ``system`` with ``preset`` on the specs' training files (via ``training.run.train``) and
    return the checkpoint directory; a finished checkpoint there is reused unless ``fresh``."""
    from harness.plugins import TASKS
    from training.recipe import TrainingData
    from training.run import META_FILE, train

    model_dir = output / f"{system}-{preset}"
    files = {}
    for spec in specs:
        files[spec.name] = spec.train_data or TASKS.get(spec.name)().sample_path("train")
    if (model_dir / META_FILE).is_file() and not fresh:
        print(f"[dialbench] reusing the trained checkpoint {model_dir}", file=sys.stderr)
        return model_dir
    print(f"[dialbench] training {system} ({preset}) for {recipe.paper} ...", file=sys.stderr, flush=True)
    train(system, TrainingData(train=files), model_dir, preset=preset, seed=seed, report_to=())
    return model_dir
