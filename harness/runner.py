"""The runner: task x system -> examples -> responses -> scores -> a run directory.

A run directory holds one system's results on one or more tasks (config.json, samples.jsonl,
results.json; ``harness/rundir.py`` owns their layout and is the only reader and writer).
All three are written atomically. Finished tasks are recorded in ``results.json`` as soon as they are
scored, so a killed multi-task run resumes at the first unfinished task (generation inside a task
resumes through the generation cache).
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.plugins import SYSTEMS
from harness.errors import DataError, UserError
from harness.jsonio import check_input, check_output_dir
from harness.provenance import environment, file_sha256, seed_everything
from harness.records import Example, Response
from harness.rundir import (RunConfig, RunResults, SampleRow, TaskResult, read_config, read_results_if_valid,
                            read_samples_if_valid, write_config, write_results, write_samples)
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
    """What one task produced: the rows of samples.jsonl, its result and what config.json records."""

    samples: list[SampleRow]
    result: TaskResult
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


def load_dialogues(task: Task, path: Path, fmt: str | None) -> list:
    """Return the dialogues of ``path``; a file that does not parse names the formats the task reads,
    since a bare "json: Extra data" does not tell the user they gave the wrong kind of file."""
    try:
        return task.load(path, fmt)
    except DataError as err:
        if err.field not in ("json", "format", "file"):
            raise
        expected = f"format '{fmt}'" if fmt else f"one of the formats it reads ({', '.join(task.formats)})"
        raise DataError(err.path, err.line, err.field, f"{err.problem}: task '{task.name}' expected {expected}; "
                        "see `dialbench list tasks`") from None


def load_examples(task: Task, path: Path, fmt: str | None, limit: int | None = None) -> list[Example]:
    """Load ``path`` with the task's loader and cut examples, keeping the first ``limit``."""
    examples = task.build_examples(load_dialogues(task, path, fmt))
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise UserError(f"{path}: no examples for task '{task.name}'")
    return examples


ENGINE_META = ("prompt", "raw_output", "generation_key", "excerpt")
"""Response meta keys the runner files into their own SampleRow fields; the rest is ``system_meta``."""


def sample_row(task: Task, example: Example, response: Response, scores: Mapping[str, float],
               hypothesis: str | None = None) -> SampleRow:
    """Return one samples.jsonl row: inputs (with the memory text the system saw), the prompt and raw
    output a prompt-based system reported, the scored hypothesis, references and per-example scores."""
    inputs: dict[str, Any] = {
        "context": [{"speaker": t.speaker, "text": t.text, **({"strategy": t.strategy} if t.strategy else {})} for t in example.context],
        **{k: v for k, v in example.inputs.items()},
    }
    if example.personas:
        inputs["personas"] = {p.owner: list(p.sentences) for p in example.personas}
    meta = dict(response.meta or {})
    if example.memory is not None:
        inputs["memory"] = memory_seen(example, meta)
    return SampleRow(
        task=task.name, example_id=example.id, dialogue_id=example.dialogue_id, inputs=inputs,
        output=response.text, references=list(example.references), label=example.label,
        predicted_label=response.label, retrieved=list(response.retrieved), ref_nll=response.ref_nll,
        ref_tokens=response.ref_tokens, meta={k: v for k, v in example.meta.items()}, scores=dict(scores),
        hypothesis=hypothesis, prompt=meta.get("prompt"), raw_output=meta.get("raw_output"),
        generation_key=meta.get("generation_key"), evidence_source="system" if response.retrieved else None,
        system_meta={k: v for k, v in meta.items() if k not in ENGINE_META} or None,
    )


def memory_seen(example: Example, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Return the memory the system saw: the excerpt's items when it was shown one (``meta["excerpt"]``),
    else the whole store (a system that searches the store itself sees all of it)."""
    assert example.memory is not None
    excerpt = meta.get("excerpt")
    items = example.memory.items
    if excerpt is not None:
        chosen = set(excerpt)
        items = tuple(item for item in items if item.id in chosen)
    return {"user": example.memory.user, "store_items": len(example.memory.items),
            "shown": "excerpt chosen by the task" if excerpt is not None else "whole store",
            "items": [{"id": item.id, "date": item.date, "text": item.text} for item in items],
            **({"profile": example.memory.profile} if example.memory.profile else {})}


def run_task(system_spec: SystemSpec, spec: TaskSpec) -> TaskOutcome:
    """Run one system on one task and score it with the task's (or the requested) metric profile."""
    from harness.metrics import get_profile
    from harness.metrics.degenerate import degenerate_warning

    task_cls = TASKS.get(spec.name)
    task = task_cls(protocol=spec.protocol, **dict(spec.options))
    test_path, train_path = resolve_data(task, spec)
    dialogues = load_dialogues(task, test_path, spec.fmt)
    examples = task.build_examples(dialogues)
    data_counts = {"dialogues": len(dialogues), "turns": sum(len(d.turns) for d in dialogues)}
    skipped = dict(getattr(task, "skipped", {}) or {})  # before the training data's build resets it
    if spec.limit is not None:
        examples = examples[:spec.limit]
    if not examples:
        raise UserError(f"{test_path}: no examples for task '{task.name}'")
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
    if not report.corpus:  # e.g. MemoryBank questions without their gold key: nothing can be scored
        hint = f"; task option '{task.name}.gold' names the gold key file" if "gold" in task.option_specs else ""
        raise UserError(f"{test_path}: no metric of profile '{profile.name}' can score task '{task.name}' "
                        f"({'; '.join(sorted(set(report.not_applicable.values())))}){hint}")
    hypotheses = [profile.prepare_hypothesis(r.text) for r in responses]
    samples = [sample_row(task, e, r, s, h) for e, r, s, h in zip(examples, responses, report.per_example, hypotheses)]
    data_sha = file_sha256(test_path)
    defaults = task_cls(protocol=spec.protocol).options
    result = TaskResult(
        task=task.name, metrics=dict(report.corpus), intervals={k: list(v) for k, v in report.intervals.items()},
        signature=report.signature, not_applicable=dict(report.not_applicable), n_examples=len(examples),
        profile=profile.name, unit=profile.unit, table_factor=profile.table_factor, language=task.language,
        n_dialogues=len({e.dialogue_id for e in examples}), protocol=task.protocol, options=dict(task.options),
        default_options=task.options == defaults, data_sha256=data_sha, data_counts=data_counts, bundled_sample=spec.data is None,
        limit=spec.limit, interval_notes=dict(report.interval_notes), warnings=[w for w in [degenerate_warning(hypotheses, task.language)] if w])
    provenance = {
        "task": task.info(),
        "spec": {
            "data": str(test_path), "data_sha256": data_sha,
            "train_data": str(train_path) if train_path else None,
            "train_data_sha256": file_sha256(train_path) if train_path else None,
            "limit": spec.limit, "format": spec.fmt, "bundled_sample": spec.data is None,
        },
        "profile": profile.name,
        "signature": report.signature,
        "n_examples": len(examples),
        "system": system_info,
        "skipped": skipped,
        "respond_seconds": round(seconds, 3),
    }
    return TaskOutcome(samples, result, provenance)


def run_system(system_spec: SystemSpec, task_specs: Sequence[TaskSpec], output_dir: str | Path, *,
               seed: int = 0, resume: bool = True, command: Sequence[str] | None = None) -> dict[str, Any]:
    """Run one system on every task spec, writing the run directory; return the results.json content.

    With ``resume`` a task already finished in ``output_dir`` under the same configuration is not
    run again. One process at a time writes a run directory (``harness.runlock``); a second one
    waits and then finds the first one's finished tasks. A run that fails before any task finished
    leaves no folder behind (nothing was lost); a later failure keeps what finished, and a re-run
    completes it.
    """
    from harness.runlock import exclusive

    output_dir = Path(check_output_dir(output_dir, "run directory"))
    created = [folder for folder in (output_dir, *output_dir.parents) if not folder.exists()]
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(output_dir):
            return _run_system(system_spec, task_specs, output_dir, seed=seed, resume=resume, command=command)
    except BaseException:
        if created and not (output_dir / "results.json").exists():
            _remove_unfinished(created)
        raise


def _remove_unfinished(created: Sequence[Path]) -> None:
    """Remove the folders this run created (run directory first, then its new parents) when it
    finished nothing: only its lock file can be in them, and an empty folder helps nobody."""
    import shutil

    shutil.rmtree(created[0], ignore_errors=True)
    for folder in created[1:]:
        try:
            folder.rmdir()  # only while empty: another run may have started writing beside ours
        except OSError:
            break


def settings_conflict(system_spec: SystemSpec, task_specs: Sequence[TaskSpec], output_dir: str | Path,
                      seed: int = 0) -> str | None:
    """Return why ``output_dir`` holds results made with other settings than these, or None.

    Resuming such a directory would replace its results with the new settings' ones (or mix both);
    commands refuse it unless the user asks for a fresh run.
    """
    found = read_config(output_dir)
    previous = found.data if found else None
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
        if before is not None and before != spec_json(spec):
            changed = sorted(k for k in before if before.get(k) != spec_json(spec).get(k))
            return f"task {spec.name} with other {', '.join(changed)}"
    return None


def _system_json(system_spec: SystemSpec) -> dict[str, Any]:
    return {"name": system_spec.name, "options": {k: _jsonable(v) for k, v in system_spec.options.items()},
            "weights": _weights_id(system_spec.options.get("model"))}


def _run_system(system_spec: SystemSpec, task_specs: Sequence[TaskSpec], output_dir: Path, *,
                seed: int, resume: bool, command: Sequence[str] | None) -> dict[str, Any]:
    seed_everything(seed)
    config = RunConfig({
        "dialbench_run": 1,
        "command": list(command) if command is not None else sys.argv,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": seed,
        "system": _system_json(system_spec),
        "tasks": [spec_json(s) for s in task_specs],
        "environment": environment(),
        "task_runs": {},
    })
    previous_config = read_config(output_dir) if resume else None
    previous_results = read_results_if_valid(output_dir) if resume else None
    previous_samples = read_samples_if_valid(output_dir) if resume and previous_results else {}
    same_setup = previous_config is not None and all(
        previous_config.data.get(k) == config.data[k] for k in ("seed", "system")
    )
    results = RunResults(system=system_spec.name)
    samples: dict[str, list[SampleRow]] = {}
    for spec in task_specs:
        request = spec_json(spec)
        previous_run = previous_config.task_run(spec.name) if previous_config else {}
        done_before = (same_setup and previous_results is not None and spec.name in previous_results.tasks
                       and previous_run.get("request") == request and spec.name in previous_samples
                       and _inputs_unchanged(previous_run.get("spec", {})))
        if done_before:
            log.info("task %s already finished in %s; keeping it", spec.name, output_dir)
            results.tasks[spec.name] = previous_results.tasks[spec.name]
            config.task_runs[spec.name] = previous_run
            samples[spec.name] = previous_samples[spec.name]
            continue
        print(f"[dialbench] {system_spec.name} on {spec.name} ...", file=sys.stderr, flush=True)
        try:
            outcome = run_task(system_spec, spec)
        except BaseException:
            # Leave a run directory that says what was asked and keeps what finished; a re-run completes it.
            if results.tasks:
                try:
                    _write_run(output_dir, config, results, samples)
                except UserError:
                    pass  # the disk that failed the task fails this too; report the first error
            raise
        results.tasks[spec.name] = outcome.result
        config.task_runs[spec.name] = {"request": request, **outcome.provenance}
        samples[spec.name] = outcome.samples
        # Record progress after every task: a killed run keeps what is finished.
        _write_run(output_dir, config, results, samples)
    _write_run(output_dir, config, results, samples)
    return results.to_json()


def _write_run(output_dir: Path, config: RunConfig, results: RunResults, samples: Mapping[str, list[SampleRow]]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    write_samples(output_dir, [row for rows in samples.values() for row in rows])
    write_config(output_dir, config)
    write_results(output_dir, results)


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


def spec_json(spec: TaskSpec) -> dict[str, Any]:
    return {
        "name": spec.name, "data": str(spec.data) if spec.data else None,
        "train_data": str(spec.train_data) if spec.train_data else None,
        "protocol": spec.protocol, "limit": spec.limit, "format": spec.fmt, "profile": spec.profile,
        "options": {k: _jsonable(v) for k, v in spec.options.items()},
    }
