"""The run directory: one owner for the files a run writes and every command reads.

A run directory holds one system's results on one or more tasks:
- ``config.json`` (:class:`RunConfig`): everything needed to re-run (command, versions, seed, system
  options, task specs, data hashes, signatures) and what each task actually used (``task_runs``);
- ``samples.jsonl`` (:class:`SampleRow` per line): inputs, the prompt, the raw output, the scored
  hypothesis after the profile's processing, references and per-example scores;
- ``results.json`` (:class:`TaskResult` per task): metric values, intervals, signature, and
  explicitly the profile, its stored unit and the factor to the papers' table unit, plus what the
  comparability checks need (protocol, options, data hash, limit, sizes).

The runner writes through these functions; ``compare``, ``table``, ``eval`` and the leaderboard
renderer read through them, so nobody parses the signature string back to find the profile or unit.
Older run directories (results.json without ``tasks``) are still read: the missing fields are
taken from config.json and, as a last resort, from the signature.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness.errors import DataError, UserError
from harness.jsonio import iter_jsonl, read_json, write_json, write_jsonl
from harness.records import Example, Response

CONFIG, SAMPLES, RESULTS = "config.json", "samples.jsonl", "results.json"
SCHEMA = 2
"""Version of the run-directory layout; 1 (no ``schema`` key) is read with fallbacks."""


# ---- samples.jsonl -------------------------------------------------------------------------------

@dataclass
class SampleRow:
    """One line of samples.jsonl: what went in, what came out, and what was scored.

    ``output`` is the system's response text (after the task parsed it, e.g. without the
    ``[Strategy]`` tag), ``raw_output`` the text the model generated when it differs, ``hypothesis``
    the string the metrics scored (after the profile's hypothesis steps such as SPT's cut at ':'),
    ``prompt`` the chat messages sent to a prompt-based model (with ``generation_key``, the key of the
    answer in the generation cache).
    """

    task: str
    example_id: str
    output: str
    references: list[str]
    dialogue_id: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    predicted_label: str | None = None
    retrieved: list[str] = field(default_factory=list)
    ref_nll: float | None = None
    ref_tokens: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    hypothesis: str | None = None
    prompt: Any = None
    raw_output: str | None = None
    generation_key: str | None = None
    evidence_source: str | None = None
    """Who chose ``retrieved``: "system" (it selected memory items itself) or None."""
    system_meta: dict[str, Any] | None = None
    """What the system reported beyond its answer (a pipeline's stage outputs, e.g. COMEDY's memories)."""

    REQUIRED = ("task", "example_id", "output", "references")

    @classmethod
    def from_json(cls, path: str | Path, line: int, row: Any) -> "SampleRow":
        """Return the row of ``path:line``; a missing or mistyped required field is a DataError."""
        if not isinstance(row, dict):
            raise DataError(path, line, "row", "expected a JSON object")
        for key in cls.REQUIRED:
            if key not in row:
                raise DataError(path, line, key, "missing")
        refs = row["references"]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise DataError(path, line, "references", "must be a list of strings")
        known = {k: row[k] for k in cls.__dataclass_fields__ if k in row and k != "REQUIRED"}
        known["example_id"], known["output"] = str(row["example_id"]), str(row["output"] or "")
        known["dialogue_id"] = str(row.get("dialogue_id") or "")
        known["retrieved"] = list(row.get("retrieved") or ())
        for key in ("inputs", "meta", "scores"):
            known[key] = dict(row.get(key) or {})
        return cls(**known)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def records(self) -> tuple[Example, Response]:
        """Return the Example/Response this row describes (the fields metrics read), for re-scoring."""
        meta = dict(self.meta)
        for key in ("evidence", "keywords"):
            if isinstance(meta.get(key), list):
                meta[key] = tuple(meta[key])
        example = Example(id=self.example_id, task=self.task, dialogue_id=self.dialogue_id, context=(),
                          references=tuple(self.references), label=self.label, meta=meta)
        memory = self.inputs.get("memory")
        excerpt = ({"excerpt": [item.get("id") for item in memory.get("items") or ()]}
                   if isinstance(memory, dict) and str(memory.get("shown", "")).startswith("excerpt") else {})
        response = Response(example_id=self.example_id, text=self.output, label=self.predicted_label,
                            retrieved=tuple(self.retrieved), ref_nll=self.ref_nll, ref_tokens=self.ref_tokens,
                            meta=excerpt)
        return example, response


def read_samples(run_dir: str | Path) -> dict[str, list[tuple[int, SampleRow]]]:
    """Return ``{task: [(line, row)]}`` of a run directory; missing files and bad rows are UserErrors."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"{run_dir}: not a run directory")
    path = root / SAMPLES
    if not path.is_file():
        raise UserError(f"{path}: file not found (is {run_dir} a dialbench run directory?)")
    grouped: dict[str, list[tuple[int, SampleRow]]] = {}
    for line, raw in iter_jsonl(path):
        row = SampleRow.from_json(path, line, raw)
        grouped.setdefault(row.task, []).append((line, row))
    return grouped


def read_samples_if_valid(run_dir: str | Path) -> dict[str, list[SampleRow]]:
    """Return the rows per task, or {} when the file is missing or damaged (a resume starts over)."""
    try:
        return {task: [row for _, row in rows] for task, rows in read_samples(run_dir).items()}
    except UserError:
        return {}


def write_samples(run_dir: str | Path, rows: Iterable[SampleRow]) -> None:
    """Write samples.jsonl atomically."""
    write_jsonl(Path(run_dir) / SAMPLES, [row.to_json() for row in rows])


# ---- results.json --------------------------------------------------------------------------------

@dataclass
class TaskResult:
    """One task's scores in a run and the facts needed to set them beside another number."""

    task: str
    metrics: dict[str, float | None]
    intervals: dict[str, list[float]] = field(default_factory=dict)
    signature: str = ""
    not_applicable: dict[str, str] = field(default_factory=dict)
    n_examples: int | None = None
    profile: str | None = None
    unit: str | None = None
    """The stored unit of the profile ("fraction" or "percent")."""
    table_factor: float | None = None
    """Factor from the stored value to the papers' table unit (``ppl`` is never scaled)."""
    language: str | None = None
    n_dialogues: int | None = None
    protocol: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    default_options: bool | None = None
    """True when every task option had its default value."""
    data_sha256: str | None = None
    data_counts: dict[str, int] = field(default_factory=dict)
    """Counts of the whole test file (``dialogues``, ``turns``), to match a published split's."""
    bundled_sample: bool | None = None
    limit: int | None = None
    interval_notes: dict[str, str] = field(default_factory=dict)
    """Why a metric has no interval (corpus Distinct-n), by key."""
    warnings: list[str] = field(default_factory=list)
    """Reasons the numbers may mislead (degenerate outputs); tables print them as footnotes."""

    def table_scale(self, metric: str) -> float:
        """Return the factor to the papers' unit for ``metric``."""
        if metric == "ppl":
            return 1.0
        if self.table_factor is not None:
            return float(self.table_factor)
        from harness.metrics import table_scale

        return table_scale(self.signature, metric)


@dataclass
class RunResults:
    """results.json: the system and one :class:`TaskResult` per task, in run order."""

    system: str
    tasks: dict[str, TaskResult] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # The flat per-field maps are kept for readers of the first layout (and scripts that grep it).
        tasks = self.tasks.values()
        return {
            "schema": SCHEMA, "system": self.system,
            "results": {t.task: t.metrics for t in tasks},
            "intervals": {t.task: t.intervals for t in tasks},
            "signatures": {t.task: t.signature for t in tasks},
            "not_applicable": {t.task: t.not_applicable for t in tasks},
            "n_examples": {t.task: t.n_examples for t in tasks},
            "tasks": {t.task: {k: v for k, v in asdict(t).items()
                               if k not in ("task", "metrics", "intervals", "signature", "not_applicable", "n_examples")}
                      for t in tasks},
        }


def _from_signature(signature: str, key: str) -> str | None:
    """Read a field of the first layout's signature (only for run directories without ``tasks``)."""
    if not signature:
        return None
    from harness.metrics.signature import parse

    return parse(signature).get(key) or None


def _parse_results(path: Path, data: Any, config: "RunConfig | None") -> RunResults:
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise UserError(f"{path}: results: missing object keyed by task id")
    extra = data.get("tasks") if isinstance(data.get("tasks"), dict) else {}
    system = data.get("system") or (config.system_name if config else "?")
    out = RunResults(system=str(system))
    for task, metrics in data["results"].items():
        if not isinstance(metrics, dict):
            raise DataError(path, None, f"results.{task}", "expected an object of metric values")
        signature = (data.get("signatures") or {}).get(task, "") or ""
        facts = dict(extra.get(task) or {})
        if not extra:  # first layout: take what config.json and the signature recorded
            run = config.task_run(task) if config else {}
            spec, info = run.get("spec", {}) or {}, run.get("task", {}) or {}
            facts = {"profile": run.get("profile") or _from_signature(signature, "profile"),
                     "unit": _from_signature(signature, "unit"), "language": _from_signature(signature, "lang"),
                     "protocol": info.get("protocol"),
                     "options": info.get("options") or {}, "data_sha256": spec.get("data_sha256"),
                     "bundled_sample": spec.get("bundled_sample"), "limit": spec.get("limit")}
        known = {k: v for k, v in facts.items() if k in TaskResult.__dataclass_fields__}
        out.tasks[task] = TaskResult(
            task=task, metrics=dict(metrics), intervals=dict((data.get("intervals") or {}).get(task) or {}),
            signature=signature, not_applicable=dict((data.get("not_applicable") or {}).get(task) or {}),
            n_examples=(data.get("n_examples") or {}).get(task), **known)
    return out


def read_results(run_dir: str | Path) -> RunResults:
    """Return results.json of a run directory; a missing or malformed file is a UserError."""
    root = Path(run_dir)
    path = root / RESULTS
    if not path.exists():
        raise UserError(f"{path}: file not found (is {run_dir} a dialbench run directory?)")
    return _parse_results(path, read_json(path), read_config(root))


def read_results_if_valid(run_dir: str | Path) -> RunResults | None:
    """Return results.json, or None when it is missing or damaged (a resume then starts over)."""
    try:
        return read_results(run_dir)
    except UserError:
        return None


def write_results(run_dir: str | Path, results: RunResults) -> None:
    """Write results.json atomically."""
    write_json(Path(run_dir) / RESULTS, results.to_json())


# ---- config.json ---------------------------------------------------------------------------------

@dataclass
class RunConfig:
    """config.json: kept as the dict it is written as, with typed accessors for what readers need."""

    data: dict[str, Any]

    @property
    def system_name(self) -> str:
        return str((self.data.get("system") or {}).get("name") or "?")

    @property
    def system_options(self) -> dict[str, Any]:
        return dict((self.data.get("system") or {}).get("options") or {})

    @property
    def task_runs(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("task_runs", {})

    def task_run(self, task: str) -> dict[str, Any]:
        return dict(self.task_runs.get(task) or {})

    def model_caption(self) -> str | None:
        """Return the model a run used as tables should name it, with its quantisation when it came
        from a GGUF file (e.g. "SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised to float32)")."""
        for run in self.task_runs.values():
            model = (run.get("system") or {}).get("model")
            if isinstance(model, dict) and model.get("quantisation"):
                name = str((model.get("source") or {}).get("name") or "model")
                quant = str(model["quantisation"]).split(" ")[0]
                name = name[: -len(quant) - 1] if name.endswith("." + quant) else name
                return f"{name} ({model['quantisation']})"
        return None

    def label(self) -> str:
        """Return a row label: the system name, its switches, and the model it ran, when it ran one.

        Switches (``--set retrieval=released``) are named so two runs of one system with different
        behaviour never share a row name; run settings that do not change what a system is (length
        cap, seed, batching, device, cache) are left to config.json.
        """
        options = self.system_options
        switches = ",".join(f"{k}={v}" for k, v in sorted(options.items()) if k not in RUN_SETTINGS)
        name = f"{self.system_name}[{switches}]" if switches else self.system_name
        model = options.get("model")
        return f"{name} ({model})" if model else name


RUN_SETTINGS = frozenset({"model", "max_new_tokens", "seed", "batch_size", "dtype", "device", "no_cache", "cache_path",
                          "trust_remote_code", "progress"})
"""System options that say how a run was executed, not which variant of the system ran (see ``label``)."""


def read_config(run_dir: str | Path) -> RunConfig | None:
    """Return config.json, or None when absent or not valid JSON (it is informative, not required)."""
    path = Path(run_dir) / CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return RunConfig(data) if isinstance(data, dict) else None


def write_config(run_dir: str | Path, config: RunConfig | Mapping[str, Any]) -> None:
    """Write config.json atomically."""
    write_json(Path(run_dir) / CONFIG, config.data if isinstance(config, RunConfig) else dict(config))


def is_run_dir(path: str | Path) -> bool:
    """Return True when ``path`` holds a results.json (a finished or partly finished run)."""
    return (Path(path) / RESULTS).is_file()
