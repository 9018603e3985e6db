"""Load any ModelSource as (model, tokenizer) on a chosen device and dtype, safely, once per process.

Safe by default: safetensors are preferred whenever a folder has them, ``.bin``/``.pt`` files are read
with ``torch.load(weights_only=True)``, and model code from the hub or a folder runs only with
``trust_remote_code=True``. Every file problem a user can fix (corrupt safetensors, an adapter made
for another base, a config transformers does not know) ends as a one-line UserError.

The runner builds one system per task, so loads are memoised per process by (source, dtype, device,
trust_remote_code): a multi-task ``dialbench eval`` loads the checkpoint once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.checkpoints.convert import deepspeed_folder, gguf_folder, model_class
from harness.checkpoints.hub import hub_snapshot
from harness.errors import first_line
from harness.checkpoints.fingerprint import fingerprint
from harness.checkpoints.source import ModelSource, parse_source

DTYPES = ("float32", "bfloat16", "float16")
KINDS = ("causal", "seq2seq", "encoder")

_LOADED: dict[tuple[str, str, str, bool], "LoadedModel"] = {}


@dataclass
class LoadedModel:
    """A model ready for inference, with everything that identifies its outputs."""

    model: Any
    tokenizer: Any
    kind: str
    source: ModelSource
    fingerprint: str
    dtype: str
    device: str
    folder: Path
    details: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """Return what config.json records about the model."""
        return {"source": self.source.describe(), "fingerprint": self.fingerprint, "kind": self.kind,
                "dtype": self.dtype, "device": self.device, "folder": str(self.folder), **self.details}


def resolve_device(device: str | None) -> str:
    """Return a concrete device: ``auto`` picks cuda when available, else cpu."""
    device = (device or "auto").strip().lower()
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
        return device
    if device in ("cpu", "mps"):
        return device
    raise UserError(f"--device '{device}' is not one of auto, cpu, cuda, cuda:N, mps")


def resolve_dtype(dtype: str | None, device: str) -> str:
    """Return a concrete dtype name: ``auto`` is bfloat16 on a GPU that supports it, float32 otherwise.

    float32 is the CPU default on purpose: bfloat16 is ~2x faster on CPUs with AMX but changes the
    generated text, so it must be asked for (and is recorded in the fingerprint).
    """
    dtype = (dtype or "auto").strip().lower()
    if dtype == "auto":
        import torch

        return "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    if dtype not in DTYPES:
        raise UserError(f"--dtype '{dtype}' is not one of auto, {', '.join(DTYPES)}")
    return dtype


def model_fingerprint(spec: str | ModelSource, dtype: str = "auto", device: str = "auto") -> str:
    """Return the fingerprint of a source without loading it (hashes are memoised on disk)."""
    source = parse_source(spec) if isinstance(spec, str) else spec
    return fingerprint(source, resolve_dtype(dtype, resolve_device(device)))


def local_folder(source: ModelSource, trust_remote_code: bool = False) -> Path:
    """Return a Hugging Face folder holding ``source``'s (base) weights, converting once if needed."""
    if source.kind == "gguf":
        return gguf_folder(source)
    if source.kind == "deepspeed":
        return deepspeed_folder(source, allow_pickle=trust_remote_code)
    if source.kind == "hub":
        return hub_snapshot(source)
    if source.kind == "peft":
        if source.base is None:
            raise ValueError("adapter without base")
        return local_folder(source.base, trust_remote_code)
    if source.path is None:
        raise ValueError(f"{source.spec}: no path")
    return source.path


def load_model(spec: str | ModelSource, *, dtype: str = "auto", device: str = "auto",
               trust_remote_code: bool = False) -> LoadedModel:
    """Return the loaded model of ``spec`` (memoised per process)."""
    source = parse_source(spec) if isinstance(spec, str) else spec
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    key = (source.spec, dtype, device, trust_remote_code)
    if key not in _LOADED:
        _LOADED[key] = _load(source, dtype, device, trust_remote_code)
    return _LOADED[key]


def _load(source: ModelSource, dtype: str, device: str, trust_remote_code: bool) -> LoadedModel:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if source.kind != "hub":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local sources never need the network
    import torch
    from transformers import AutoConfig, AutoTokenizer

    folder = local_folder(source, trust_remote_code)
    check_safetensors(folder)
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
        cls = model_class(config)
        has_safetensors = any(folder.glob("*.safetensors"))
        model = cls.from_pretrained(str(folder), dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code,
                                    use_safetensors=True if has_safetensors else None, weights_only=True)
        tokenizer_dir = source.path if source.kind == "peft" and source.path and _has_tokenizer(source.path) else folder
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), trust_remote_code=trust_remote_code)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:
        raise UserError(f"{folder}: cannot load model ({type(err).__name__}: {first_line(err)})") from None
    if source.kind == "peft":
        model = attach_adapter(model, source)
    model = model.to(device).eval()
    kind = "seq2seq" if getattr(config, "is_encoder_decoder", False) else (
        "causal" if cls.__name__ == "AutoModelForCausalLM" else "encoder")
    details = {"class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters()),
               "attn_implementation": getattr(model.config, "_attn_implementation", None),
               "parameter_dtype": next((str(p.dtype).replace("torch.", "") for p in model.parameters()), None)}
    if source.kind == "gguf" and source.path is not None:
        from harness.checkpoints.convert import recorded_quantisation

        quantisation = recorded_quantisation(folder, source)
        details["quantisation"] = f"{quantisation} GGUF, de-quantised to {dtype}"
    return LoadedModel(model, tokenizer, kind, source, fingerprint(source, dtype), dtype, device, folder, details)


def attach_adapter(model: Any, source: ModelSource) -> Any:
    """Return ``model`` with the PEFT adapter of ``source`` attached (merged when asked)."""
    from peft import PeftModel

    base = source.base.spec if source.base else "?"
    try:
        model = PeftModel.from_pretrained(model, str(source.path), is_trainable=False)
    except (ValueError, RuntimeError, KeyError) as err:
        raise UserError(f"{source.path}: adapter does not match base model {base} "
                        f"({type(err).__name__}: {first_line(err)})") from None
    return model.merge_and_unload() if source.merge else model


def check_safetensors(folder: Path) -> None:
    """Raise a UserError naming the file when a safetensors file in ``folder`` is corrupt or truncated."""
    from safetensors import safe_open

    for file in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
            if file.stat().st_size < 8:
                raise ValueError("file too short")
        except Exception as err:  # SafetensorError is not exported under a stable name
            raise UserError(f"{file}: corrupt safetensors file ({first_line(err)})") from None


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()


def clear_loaded() -> None:
    """Forget memoised models (tests; freeing memory between model sweeps)."""
    _LOADED.clear()
