"""Save and load SPT checkpoints: the trained tensors as safetensors beside an adapter config.

dialbench layout (``DIR``): ``spt.safetensors`` (``prompts`` [K, n, d], ``normalizer.weight``/``.bias``),
``adapter_config.json`` (``dialbench_adapter: spt``, the base model and its revision, the whole
SPTConfig), the tokenizer, and ``base/`` only when the base was randomly initialised (it exists
nowhere else). ``adapter_config.json`` also makes ``--model DIR`` a valid model source.

Released checkpoints (systems.md section 9.1) are ``ds_ckpt/{latest, best/mp_rank_00_model_states.pt}`` plus
the training yml. ``consolidate_released`` reads ``module`` from the model-states file with
``torch.load(weights_only=True)`` (its pickle imports are all on torch's allow-list; nothing is
executed), takes ``models.{k}.prompt_encoder.default.embedding.weight`` and ``prompt_normalizer.*``,
reads the base model name from the yml with ``yaml.safe_load`` (``checkpoint_best.pth`` pickles a
DotMap and is never opened) and writes the dialbench layout into the cache, once.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from harness.errors import UserError, first_line
from harness.jsonio import read_json, write_json
from models.spt.config import SPTConfig

WEIGHTS = "spt.safetensors"
CONFIG = "adapter_config.json"
BASE_DIR = "base"
MARK = "spt"
_RELEASED_PROMPT = re.compile(r"^models\.(\d+)\.prompt_encoder\.default\.embedding\.weight$")


def save(model: Any, tokenizer: Any, directory: str | Path) -> None:
    """Write ``model`` (an SPTModel) and ``tokenizer`` into ``directory`` in the dialbench layout."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config: SPTConfig = model.spt
    base = model.base
    if not getattr(base.config, "_name_or_path", "") or config.base == BASE_DIR:
        if not (directory / BASE_DIR / "config.json").is_file():
            base.save_pretrained(str(directory / BASE_DIR))
            tokenizer.save_pretrained(str(directory / BASE_DIR))
        config = config.with_options({"base": BASE_DIR})
    tensors = {name: tensor.detach().float().cpu().contiguous() for name, tensor in model.trainable_state().items()}
    tmp = directory / f".{WEIGHTS}.tmp-{os.getpid()}"
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / WEIGHTS)
    write_json(directory / CONFIG, {
        "dialbench_adapter": MARK,
        "peft_type": "SPT",
        "base_model_name_or_path": config.base,
        "revision": config.base_revision,
        "prompt_shape": list(model.prompts.shape),
        "spt": config.to_json(),
    })
    tokenizer.save_pretrained(str(directory))


def is_checkpoint(directory: Path) -> bool:
    """Return True when ``directory`` holds a dialbench SPT checkpoint."""
    try:
        return (directory / WEIGHTS).is_file() and read_json(directory / CONFIG).get("dialbench_adapter") == MARK
    except (OSError, ValueError, AttributeError):
        return False


def read_config(directory: Path) -> SPTConfig:
    """Return the SPTConfig recorded in ``directory``; a foreign adapter folder is a UserError."""
    path = directory / CONFIG
    try:
        data = read_json(path)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read SPT adapter config ({first_line(err)})") from None
    if not isinstance(data, dict) or data.get("dialbench_adapter") != MARK or not isinstance(data.get("spt"), dict):
        raise UserError(f"{path}: not an SPT checkpoint (make one with `dialbench train spt`)")
    return SPTConfig.from_json(data["spt"], str(path))


def resolve_base(directory: Path, base: str) -> str:
    """Return the model source of ``base``: a path relative to the checkpoint, or the name as given."""
    local = directory / base
    return str(local) if not base.startswith("embedded:") and local.exists() else base


def apply_tensors(model: Any, tensors: dict[str, Any], where: str) -> None:
    """Copy checkpoint tensors into ``model``; a shape that does not fit the base is a UserError."""
    import torch

    prompts = tensors.get("prompts")
    if prompts is None:
        raise UserError(f"{where}: no 'prompts' tensor")
    expected = tuple(model.prompts.shape)
    if tuple(prompts.shape) != expected:
        raise UserError(f"{where}: prompt tables have shape {list(prompts.shape)} but the base "
                        f"'{model.spt.base}' needs {list(expected)} (prompt width {prompts.shape[-1]} vs "
                        f"embedding width {expected[-1]})")
    with torch.no_grad():
        model.prompts.copy_(prompts)
        if model.normalizer is not None:
            for name in ("weight", "bias"):
                value = tensors.get(f"normalizer.{name}")
                target = getattr(model.normalizer, name)
                if value is None or tuple(value.shape) != tuple(target.shape):
                    raise UserError(f"{where}: normalizer.{name} missing or of the wrong shape for width {expected[-1]}")
                target.copy_(value)


# ---- released checkpoints --------------------------------------------------------------------------------

def released_tensors(ds_dir: Path) -> tuple[dict[str, Any], Path]:
    """Return the SPT tensors of a released ``ds_ckpt`` folder (prompts stacked [K, n, d]) and the states file."""
    import pickle

    import torch

    from harness.checkpoints.convert import safe_torch_load
    from harness.checkpoints.source import deepspeed_tag_dir

    tag = deepspeed_tag_dir(ds_dir)
    files = sorted(tag.glob("mp_rank_*_model_states.pt")) if tag else []
    if not files:
        raise UserError(f"{ds_dir}: no DeepSpeed model states (expected latest + <tag>/mp_rank_00_model_states.pt)")
    try:
        with safe_torch_load(False):
            state = torch.load(str(files[0]), map_location="cpu")
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        raise UserError(f"{files[0]}: holds {found.group(1) if found else 'a pickled object'}, which safe loading "
                        "refuses (weights_only); not an SPT checkpoint or not a trusted one") from None
    except (OSError, RuntimeError, EOFError) as err:
        raise UserError(f"{files[0]}: cannot read DeepSpeed model states ({first_line(err)})") from None
    module = state.get("module") if isinstance(state, dict) else None
    if not isinstance(module, dict):
        raise UserError(f"{files[0]}: no 'module' state dict")
    prompts = {int(m.group(1)): value for key, value in module.items() if (m := _RELEASED_PROMPT.match(key))}
    if not prompts or sorted(prompts) != list(range(len(prompts))):
        raise UserError(f"{files[0]}: no models.<k>.prompt_encoder.default.embedding.weight tensors (not an SPT checkpoint)")
    tensors = {"prompts": torch.stack([prompts[k].float() for k in range(len(prompts))])}
    for name in ("weight", "bias"):
        if f"prompt_normalizer.{name}" in module:
            tensors[f"normalizer.{name}"] = module[f"prompt_normalizer.{name}"].float()
    return tensors, files[0]


def released_base(ds_dir: Path, yml: str | None) -> tuple[str | None, Path | None]:
    """Return (model_name from the training yml, the yml) looked up beside ``ds_dir`` or at ``yml``."""
    import yaml

    candidates = [Path(yml)] if yml else sorted(ds_dir.parent.glob("*.yml")) + sorted(ds_dir.parent.glob("*.yaml"))
    for path in candidates:
        if not path.is_file():
            raise UserError(f"{path}: training yml not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise UserError(f"{path}: not valid YAML ({first_line(err)})") from None
        name = _find_key(data, "model_name")
        if name:
            return str(name), path
    return None, candidates[0] if candidates else None


def _find_key(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        if key in data and isinstance(data[key], str):
            return data[key]
        for value in data.values():
            found = _find_key(value, key)
            if found:
                return found
    return None


def consolidate_released(ds_dir: str | Path, *, base: str | None = None, yml: str | None = None) -> Path:
    """Return a dialbench checkpoint folder (in the cache) built from a released ``ds_ckpt`` folder.

    ``base`` names a local copy of the base model (the released Llama config points at the authors'
    machine); otherwise the yml's ``model_name`` is used.
    """
    from safetensors.torch import save_file

    from harness.checkpoints.convert import models_dir
    from harness.checkpoints.fingerprint import file_sha256

    ds_dir = Path(ds_dir).resolve()
    tensors, states = released_tensors(ds_dir)
    name, yml_path = released_base(ds_dir, yml)
    base = base or name
    if not base:
        raise UserError(f"{ds_dir}: no base model: put the training yml (model_name) beside ds_ckpt or pass "
                        "--set base=PATH")
    k, n, _ = tensors["prompts"].shape
    llama = "llama" in base.lower()
    config = SPTConfig(base=base, num_prompts=k, num_virtual_tokens=n, selector="normalizer.weight" in tensors and k > 1,
                       selection_weight=1.0 if llama else 0.4, contrastive_weight=1.0 if llama else 0.4)
    target = models_dir() / f"spt-released-{file_sha256(states)[:16]}-{re.sub(r'[^A-Za-z0-9._-]+', '-', base)[-40:]}"
    if is_checkpoint(target):
        return target
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file({key: value.contiguous() for key, value in tensors.items()}, str(tmp / WEIGHTS))
        write_json(tmp / CONFIG, {"dialbench_adapter": MARK, "peft_type": "SPT", "base_model_name_or_path": base,
                                  "revision": None, "prompt_shape": list(tensors["prompts"].shape),
                                  "spt": config.to_json(), "released_from": str(ds_dir),
                                  "released_yml": str(yml_path) if yml_path else None})
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
