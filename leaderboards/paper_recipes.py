"""Paper recipes: one declarative JSON file per paper (``leaderboards/recipes/NAME.json``) saying
what ``dialbench reproduce NAME`` runs and which published numbers it is compared with.

A new paper is one file; it is validated on load against the registries (tasks, systems, training
recipes and presets, profiles and their metrics, published entries), and every problem is one
UserError naming the file and the field, e.g. ``spt.json: tasks[0].compare[1].published: unknown
published system 'X' for task 'convai2_persona'; valid: ...``. Schema (``?`` = optional)::

    {"paper": NAME (= file stem), "title": str, "about": str,
     "tiny_cpu_minutes": number, "gpu": {"tiny": bool, "paper": bool},
     "systems": [{"name": SYSTEM, "options"?: {..}, "train"?: {"presets": [PRESET..]},
                  "weights"?: "how to get released weights (shown by --list)"}],
     "tasks": [{"task": TASK, "protocol"?: str, "options"?: {..}, "profile": PROFILE,
                "data": {"what": "which file the paper used", "expected"?: {"dialogues"?: int, "turns"?: int, "examples"?: int},
                         "holdout"?: fraction evaluated when a trained system trains on the same file},
                "compare": [{"published": SYSTEM_IN_published.json, "metrics": [METRIC..],
                             "different_recipe"?: "why these numbers are not comparable (shown, no delta)"}]}]}

Human-judged published entries (``human_judged`` in published.json) may be compared too: they are
always shown without a delta.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.errors import UserError, unknown_name

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


@dataclass(frozen=True)
class Comparison:
    """Published numbers a task's results are set beside: the entry's system and which metrics."""

    published: str
    metrics: tuple[str, ...]
    human_judged: bool = False
    different_recipe: str = ""


@dataclass(frozen=True)
class PaperTask:
    task: str
    profile: str
    protocol: str | None
    options: Mapping[str, Any]
    data_what: str
    expected: Mapping[str, int]
    holdout: float | None
    compare: tuple[Comparison, ...]


@dataclass(frozen=True)
class PaperSystem:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    presets: tuple[str, ...] = ()
    """Training presets; empty for a system that is evaluated without training."""
    weights: str = ""


@dataclass(frozen=True)
class PaperRecipe:
    paper: str
    title: str
    about: str
    path: Path
    systems: tuple[PaperSystem, ...]
    tasks: tuple[PaperTask, ...]
    tiny_cpu_minutes: float
    gpu: Mapping[str, bool]


class _Fields:
    """Typed access to one JSON object, every error naming the file and the dotted field."""

    def __init__(self, path: Path, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise UserError(f"{path.name}: {where or 'file'}: expected an object")
        self.path, self.where, self.data = path, where, data

    def error(self, name: str, problem: str) -> UserError:
        return UserError(f"{self.path.name}: {self.at(name)}: {problem}")

    def at(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ..., ) -> Any:
        if name not in self.data:
            if default is ...:
                raise self.error(name, "missing")
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (kind in (int, float, (int, float)) and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(name, f"expected {names}, got {type(value).__name__}")
        return value

    def check_keys(self, allowed: Sequence[str]) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise self.error(unknown[0], f"unknown field; valid: {', '.join(allowed)}")


def _choice(fields: _Fields, name: str, value: str, choices: Sequence[str], kind: str) -> None:
    if value not in choices:
        raise UserError(f"{fields.path.name}: {fields.at(name)}: {unknown_name(kind, value, choices)}")


def load_recipe(path: str | Path) -> PaperRecipe:
    """Return the validated recipe in ``path`` (see the module docstring for the schema)."""
    from harness.plugins import PROFILES, RECIPES, SYSTEMS, TASKS
    from leaderboards.published import DEFAULT_REFERENCES

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except ValueError as err:
        raise UserError(f"{path.name}: not valid JSON ({err})") from None
    top = _Fields(path, "", data)
    top.check_keys(["paper", "title", "about", "tiny_cpu_minutes", "gpu", "systems", "tasks"])
    paper = top.get("paper", str)
    if paper != path.stem:
        raise top.error("paper", f"'{paper}' must equal the file name '{path.stem}'")
    published, human = _published_index(DEFAULT_REFERENCES)
    systems = []
    for i, raw in enumerate(top.get("systems", list)):
        sf = _Fields(path, f"systems[{i}]", raw)
        sf.check_keys(["name", "options", "train", "weights"])
        name = sf.get("name", str)
        _choice(sf, "name", name, SYSTEMS.names(), "system")
        presets: tuple[str, ...] = ()
        if "train" in raw:
            tf = _Fields(path, f"systems[{i}].train", sf.get("train", dict))
            tf.check_keys(["presets"])
            if name not in RECIPES:
                raise tf.error("presets", f"system '{name}' has no training recipe")
            presets = tuple(tf.get("presets", list))
            for j, preset in enumerate(presets):
                _choice(tf, f"presets[{j}]", preset, list(RECIPES.get(name).presets), f"preset of '{name}'")
        systems.append(PaperSystem(name, dict(sf.get("options", dict, {})), presets, sf.get("weights", str, "")))
    if not systems:
        raise top.error("systems", "needs at least one system")
    tasks = []
    for i, raw in enumerate(top.get("tasks", list)):
        tf = _Fields(path, f"tasks[{i}]", raw)
        tf.check_keys(["task", "protocol", "options", "profile", "data", "compare"])
        task = tf.get("task", str)
        _choice(tf, "task", task, TASKS.names(), "task")
        task_cls = TASKS.get(task)
        protocol = tf.get("protocol", str, None)
        if protocol is not None:
            _choice(tf, "protocol", protocol, list(task_cls.protocols), f"protocol of '{task}'")
        options = dict(tf.get("options", dict, {}))
        for key in options:
            _choice(tf, f"options.{key}", key, list(task_cls.option_specs), f"option of '{task}'")
        profile = tf.get("profile", str)
        _choice(tf, "profile", profile, PROFILES.names(), "metric profile")
        keys = set(PROFILES.get(profile).keys)
        df = _Fields(path, f"tasks[{i}].data", tf.get("data", dict))
        df.check_keys(["what", "expected", "holdout"])
        expected = dict(df.get("expected", dict, {}))
        for key, value in expected.items():
            if key not in ("dialogues", "turns", "examples") or not isinstance(value, int) or isinstance(value, bool):
                raise df.error(f"expected.{key}", "expected 'dialogues', 'turns' or 'examples' with an integer count")
        holdout = df.get("holdout", (int, float), None)
        if holdout is not None and not 0 < holdout < 1:
            raise df.error("holdout", f"must be a fraction between 0 and 1, got {holdout}")
        compare = []
        for j, craw in enumerate(tf.get("compare", list)):
            cf = _Fields(path, f"tasks[{i}].compare[{j}]", craw)
            cf.check_keys(["published", "metrics", "different_recipe"])
            system = cf.get("published", str)
            entries = {**{s: m for (t, s), m in published.items() if t == task},
                       **{s: m for (t, s), m in human.items() if t == task}}
            _choice(cf, "published", system, sorted(entries), f"published system for task '{task}'")
            metrics = tuple(cf.get("metrics", list))
            is_human = (task, system) in human
            for k, metric in enumerate(metrics):
                _choice(cf, f"metrics[{k}]", metric, sorted(entries[system]), f"metric of published '{system}'")
                if not is_human and metric not in keys:
                    raise cf.error(f"metrics[{k}]", f"profile '{profile}' does not report '{metric}'; "
                                   f"valid: {', '.join(sorted(keys))}")
            compare.append(Comparison(system, metrics, is_human, cf.get("different_recipe", str, "")))
        tasks.append(PaperTask(task, profile, protocol, options, df.get("what", str), expected, holdout, tuple(compare)))
    if not tasks:
        raise top.error("tasks", "needs at least one task")
    gpu = top.get("gpu", dict)
    return PaperRecipe(paper, top.get("title", str), top.get("about", str, ""), path, tuple(systems), tuple(tasks),
                       float(top.get("tiny_cpu_minutes", (int, float))), {k: bool(v) for k, v in gpu.items()})


def _published_index(path: Path) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], list[str]]]:
    """Return ``{(task, system): metrics}`` of automatic and of human-judged published entries."""
    data = json.loads(path.read_text(encoding="utf-8"))
    auto = {(e["task"], e["system"]): list(e["metrics"]) for e in data.get("entries", [])}
    return auto, {key: list(metrics) for key, metrics in human_judged(path).items()}


def human_judged(path: Path | None = None) -> dict[tuple[str, str], dict[str, float]]:
    """Return ``{(task, system): metrics}`` of the human-judged published entries (never given a delta)."""
    from leaderboards.published import DEFAULT_REFERENCES

    data = json.loads((path or DEFAULT_REFERENCES).read_text(encoding="utf-8"))
    return {(e["task"], e["system"]): dict(e["metrics"]) for e in data.get("human_judged", [])}


def recipe_names(folder: Path = RECIPES_DIR) -> list[str]:
    """Return the paper names that have a recipe file."""
    return sorted(p.stem for p in folder.glob("*.json"))


def get_recipe(name: str, folder: Path = RECIPES_DIR) -> PaperRecipe:
    """Return the validated recipe of paper ``name``; an unknown name lists the available ones."""
    if name not in recipe_names(folder):
        raise unknown_name("paper recipe", name, recipe_names(folder))
    return load_recipe(folder / f"{name}.json")
