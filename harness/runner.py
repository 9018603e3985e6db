"""The runner: task x system -> examples -> responses -> scores -> a run directory.

A run directory holds one system's results on one or more tasks:
- ``config.json``: everything needed to re-run (command, versions, seed, system options, task specs,
  data file hashes, metric signatures);
- ``samples.jsonl``: one line per example (inputs, output, references, per-example scores);
- ``results.json``: ``{"results": {task: {metric: value}}, "intervals": ..., "signatures": ...}``.
All three are written atomically. Finished tasks are recorded in ``results.json`` as soon as they are
scored, so a killed multi-task run resumes at the first unfinished task (generation inside a task
resumes through the generation cache).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.plugins import SYSTEMS
from harness.errors import UserError
from harness.jsonio import check_input, check_output_dir, write_json, write_jsonl
from harness.provenance import environment, file_sha256, seed_everything
from harness.records import Example, Response
from harness.system import System
from harness.task import Task
from harness.plugins import TASKS

log = logging.getLogger("dialbench.runner")


@dataclass(frozen=True)
class TaskSpec:
    """Which task to run on which data; ``data=None`` means the task's bundled sample."""

    name: str
    data: Path | None = None
    train_data: Path | None = None
    protocol: str | None = None
    limit: int | None = None
    fmt: str | None = None
    profile: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemSpec:
    """Which system to run, with its options (e.g. ``{"model": "embedded:smollm2-135m-instruct"}``)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class TaskOutcome:
    """What one task produced: the rows of samples.jsonl and its metrics."""

    samples: list[dict[str, Any]]
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    signature: str
    not_applicable: dict[str, str]
    provenance: dict[str, Any]


def resolve_data(task: Task, spec: TaskSpec) -> tuple[Path, Path | None]:
    """Return (test data path, training data path or None), defaulting to the bundled samples."""
    test_path = Path(spec.data) if spec.data is not None else task.sample_path("test")
    assert test_path is not None
    if spec.train_data is not None:
        train_path: Path | None = Path(spec.train_data)
    elif spec.data is None:
        train_path = task.sample_path("train", required=False)
    else:
        train_path = None
    for path in (test_path, train_path):
        if path is not None:
            try:
                check_input(path, "data")
            except UserError as err:
                raise UserError(f"{err} (data for task '{task.name}')") from None
    return test_path, train_path


def load_examples(task: Task, path: Path, fmt: str | None, limit: int | None = None) -> list[Example]:
    """Load ``path`` with the task's loader and cut examples, keeping the first ``limit``."""
    examples = task.build_examples(task.load(path, fmt))
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise UserError(f"{path}: no examples for task '{task.name}'")
    return examples


def sample_row(task: Task, example: Example, response: Response, scores: Mapping[str, float]) -> dict[str, Any]:
    """Return one samples.jsonl line: inputs, output, references and per-example scores."""
    inputs: dict[str, Any] = {
        "context": [{"speaker": t.speaker, "text": t.text, **({"strategy": t.strategy} if t.strategy else {})} for t in example.context],
        **{k: v for k, v in example.inputs.items()},
    }
    if example.personas:
        inputs["personas"] = {p.owner: list(p.sentences) for p in example.personas}
    if example.memory is not None:
        inputs["memory"] = {"user": example.memory.user, "items": len(example.memory.items)}
    return {
        "task": task.name,
        "example_id": example.id,
        "dialogue_id": example.dialogue_id,
        "inputs": inputs,
        "output": response.text,
        "references": list(example.references),
        "label": example.label,
        "predicted_label": response.label,
        "retrieved": list(response.retrieved),
        "ref_nll": response.ref_nll,
        "ref_tokens": response.ref_tokens,
        "meta": {k: v for k, v in example.meta.items()},
        "scores": dict(scores),
    }


def run_task(system_spec: SystemSpec, spec: TaskSpec) -> TaskOutcome:
    """Run one system on one task and score it with the task's (or the requested) metric profile."""
    from harness.metrics import get_profile

    task_cls = TASKS.get(spec.name)
    task = task_cls(protocol=spec.protocol, **dict(spec.options))
    test_path, train_path = resolve_data(task, spec)
    examples = load_examples(task, test_path, spec.fmt, spec.limit)
    profile = get_profile(spec.profile or task.default_profile)
    profile.prepare()  # slow metric resources (the METEOR JVM) load while the system generates
    system_cls = SYSTEMS.get(system_spec.name)
    system: System = system_cls(task, **dict(system_spec.options))
    try:
        if system.uses_training_data and train_path is not None:
            system.fit(load_examples(task, train_path, spec.fmt))
        started = time.perf_counter()
        responses = system.respond(examples)
        seconds = time.perf_counter() - started
        system_info = system.info()
    finally:
        system.close()
    if len(responses) != len(examples) or any(r.example_id != e.id for r, e in zip(responses, examples)):
        raise RuntimeError(f"system '{system.name}' returned responses out of order for task '{task.name}'")
    report = profile.score(examples, responses, language=task.language)
    samples = [sample_row(task, e, r, s) for e, r, s in zip(examples, responses, report.per_example)]
    provenance = {
        "task": task.info(),
        "spec": {
            "data": str(test_path), "data_sha256": file_sha256(test_path),
            "train_data": str(train_path) if train_path else None,
            "train_data_sha256": file_sha256(train_path) if train_path else None,
            "limit": spec.limit, "format": spec.fmt, "bundled_sample": spec.data is None,
        },
        "profile": profile.name,
        "signature": report.signature,
        "n_examples": len(examples),
        "system": system_info,
        "skipped": dict(getattr(task, "skipped", {}) or {}),
        "respond_seconds": round(seconds, 3),
    }
    return TaskOutcome(samples, dict(report.corpus), dict(report.intervals), report.signature,
                       dict(report.not_applicable), provenance)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_system(system_spec: SystemSpec, task_specs: Sequence[TaskSpec], output_dir: str | Path, *,
               seed: int = 0, resume: bool = True, command: Sequence[str] | None = None) -> dict[str, Any]:
    """Run one system on every task spec, writing the run directory; return the results.json content.

    With ``resume`` a task already finished in ``output_dir`` under the same configuration is not
    run again. One process at a time writes a run directory (see ``harness.rundir``); a second one
    waits and then finds the first one's finished tasks.
    """
    from harness.rundir import exclusive

    output_dir = Path(check_output_dir(output_dir, "run directory"))
    output_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(output_dir):
        return _run_system(system_spec, task_specs, output_dir, seed=seed, resume=resume, command=command)


def settings_conflict(system_spec: SystemSpec, task_specs: Sequence[TaskSpec], output_dir: str | Path,
                      seed: int = 0) -> str | None:
    """Return why ``output_dir`` holds results made with other settings than these, or None.

    Resuming such a directory would replace its results with the new settings' ones (or mix both);
    commands refuse it unless the user asks for a fresh run.
    """
    previous = _read_json(Path(output_dir) / "config.json")
    if not previous or not previous.get("task_runs"):
        return None
    if previous.get("seed") != seed:
        return f"seed {previous.get('seed')}, not {seed}"
    system = _system_json(system_spec)
    if previous.get("system") != system:
        old = previous.get("system", {})
        changed = sorted(k for k in set(old.get("options", {})) | set(system["options"])
                         if old.get("options", {}).get(k) != system["options"].get(k))
        what = f"options {', '.join(changed)}" if changed else "system or weights"
        return f"{old.get('name')} with other {what}"
    for spec in task_specs:
        before = previous["task_runs"].get(spec.name, {}).get("request")
        if before is not None and before != _spec_json(spec):
            changed = sorted(k for k in before if before.get(k) != _spec_json(spec).get(k))
            return f"task {spec.name} with other {', '.join(changed)}"
    return None


def _system_json(system_spec: SystemSpec) -> dict[str, Any]:
    return {"name": system_spec.name, "options": {k: _jsonable(v) for k, v in system_spec.options.items()},
            "weights": _weights_id(system_spec.options.get("model"))}


def _run_system(system_spec: SystemSpec, task_specs: Sequence[TaskSpec], output_dir: Path, *,
                seed: int, resume: bool, command: Sequence[str] | None) -> dict[str, Any]:
    seed_everything(seed)
    config = {
        "dialbench_run": 1,
        "command": list(command) if command is not None else sys.argv,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": seed,
        "system": _system_json(system_spec),
        "tasks": [_spec_json(s) for s in task_specs],
        "environment": environment(),
        "task_runs": {},
    }
    previous_config = _read_json(output_dir / "config.json") if resume else None
    previous_results = _read_json(output_dir / "results.json") if resume else None
    previous_samples = _read_samples(output_dir / "samples.jsonl") if resume else {}
    same_setup = bool(previous_config) and all(
        previous_config.get(k) == config[k] for k in ("seed", "system")
    )
    results: dict[str, Any] = {"results": {}, "intervals": {}, "signatures": {}, "not_applicable": {},
                               "n_examples": {}, "system": system_spec.name}
    samples: dict[str, list[dict[str, Any]]] = {}
    for spec in task_specs:
        spec_json = _spec_json(spec)
        previous_run = (previous_config or {}).get("task_runs", {}).get(spec.name, {})
        done_before = (same_setup and previous_results and spec.name in previous_results.get("results", {})
                       and previous_run.get("request") == spec_json and spec.name in previous_samples
                       and _inputs_unchanged(previous_run.get("spec", {})))
        if done_before:
            log.info("task %s already finished in %s; keeping it", spec.name, output_dir)
            for key in ("results", "intervals", "signatures", "not_applicable", "n_examples"):
                results[key][spec.name] = previous_results[key][spec.name]
            config["task_runs"][spec.name] = previous_config["task_runs"][spec.name]
            samples[spec.name] = previous_samples[spec.name]
            continue
        print(f"[dialbench] {system_spec.name} on {spec.name} ...", file=sys.stderr, flush=True)
        try:
            outcome = run_task(system_spec, spec)
        except BaseException:
            # Leave a run directory that says what was asked and keeps what finished; a re-run completes it.
            try:
                _write_run(output_dir, samples, config, results)
            except UserError:
                pass  # the disk that failed the task fails this too; report the first error
            raise
        results["results"][spec.name] = outcome.metrics
        results["intervals"][spec.name] = {k: list(v) for k, v in outcome.intervals.items()}
        results["signatures"][spec.name] = outcome.signature
        results["not_applicable"][spec.name] = outcome.not_applicable
        results["n_examples"][spec.name] = len(outcome.samples)
        config["task_runs"][spec.name] = {"request": spec_json, **outcome.provenance}
        samples[spec.name] = outcome.samples
        # Record progress after every task: a killed run keeps what is finished.
        _write_run(output_dir, samples, config, results)
    _write_run(output_dir, samples, config, results)
    return results


def _write_run(output_dir: Path, samples: Mapping[str, list[dict[str, Any]]], config: dict[str, Any],
               results: dict[str, Any]) -> None:
    write_jsonl(output_dir / "samples.jsonl", [row for rows in samples.values() for row in rows])
    write_json(output_dir / "config.json", config)
    write_json(output_dir / "results.json", results)


def _read_samples(path: Path) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                grouped.setdefault(row["task"], []).append(row)
    except (OSError, ValueError, KeyError):
        return {}
    return grouped


def _weights_id(model: Any) -> str | None:
    """Return the content-hash id of a local model option (memoised, cheap when warm), so a resumed
    run notices weights retrained into the same folder; None for hub ids and systems without one."""
    if not isinstance(model, (str, Path)) or not str(model).strip():
        return None
    try:
        from harness.checkpoints.fingerprint import weights_id
        from harness.checkpoints.source import parse_source

        source = parse_source(str(model))
        return None if source.kind == "hub" else weights_id(source)
    except (UserError, ValueError, OSError):
        return None


def _inputs_unchanged(previous_spec: Mapping[str, Any]) -> bool:
    """Return True when the data files a finished task used still have the hashes it recorded."""
    for key in ("data", "train_data"):
        path = previous_spec.get(key)
        if path and (not Path(path).exists() or file_sha256(path) != previous_spec.get(f"{key}_sha256")):
            return False
    return True


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _spec_json(spec: TaskSpec) -> dict[str, Any]:
    return {
        "name": spec.name, "data": str(spec.data) if spec.data else None,
        "train_data": str(spec.train_data) if spec.train_data else None,
        "protocol": spec.protocol, "limit": spec.limit, "format": spec.fmt, "profile": spec.profile,
        "options": {k: _jsonable(v) for k, v in spec.options.items()},
    }
