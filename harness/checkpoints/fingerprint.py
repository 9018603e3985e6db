"""Model fingerprints: a short string that changes whenever the model's outputs could change.

fingerprint = base name + content hash (or hub revision) + adapter name and hash (+ merge) + dtype,
e.g. ``smollm2-135m-instruct@gguf:3f2a9c1d0b7e4a55|float32``. It keys the generation cache and is
recorded in config.json, so two runs whose fingerprints match used the same weights. Hashing is by
content, not by path, so moving a folder keeps its cache entries and retraining into the same folder
does not reuse stale ones.

Hashing a 500 MB safetensors file takes about a second; hashes are memoised in the cache folder by
(path, size, mtime), so a warm re-run fingerprints without reading the weights and without
importing torch.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from harness.cachedir import cache_root
from harness.checkpoints.hub import hub_snapshot
from harness.checkpoints.source import ModelSource, deepspeed_tag_dir

MODEL_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf", "*.json", "*.model", "*.txt",
               "*.jinja", "*.tiktoken")
"""Files whose content can move a model's outputs (weights, configs, tokenizer, chat template)."""
NOT_MODEL_FILES = ("optimizer", "scheduler", "rng_state", "trainer_state", "training_args", "reference_state")
"""Training by-products that sit next to weights but never change outputs."""


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of ``path``, memoised by (absolute path, size, mtime_ns)."""
    path = path.resolve()
    stat = path.stat()
    memo_path = cache_root() / "file-hashes.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    stamp = [stat.st_size, stat.st_mtime_ns]
    entry = memo.get(str(path))
    if entry and entry[:2] == stamp:
        return str(entry[2])
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    memo[str(path)] = [*stamp, digest.hexdigest()]
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_name(f"{memo_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo), encoding="utf-8")
        os.replace(tmp, memo_path)
    except OSError:
        pass  # a read-only cache only costs re-hashing next time
    return digest.hexdigest()


def model_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Return the files of ``folder`` that define the model, sorted (training by-products excluded)."""
    found: set[Path] = set()
    for pattern in MODEL_FILES:
        found.update(folder.rglob(pattern) if recursive else folder.glob(pattern))
    return sorted(p for p in found if p.is_file() and not p.name.startswith(NOT_MODEL_FILES))


def files_hash(files: Iterable[Path], root: Path) -> str:
    """Return a SHA-256 over the (relative name, content hash) of ``files``."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(root) if file.is_relative_to(root) else file.name}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def content_hash(source: ModelSource) -> str:
    """Return the content hash of a local source's own files (an adapter's, not its base's)."""
    path = source.path
    if path is None:
        raise ValueError(f"{source.spec} has no local files to hash")
    if path.is_file():
        return file_sha256(path)
    if source.kind == "deepspeed":
        tag = deepspeed_tag_dir(path) or path
        return files_hash(model_files(tag) + model_files(path), path)
    return files_hash(model_files(path), path)


def fingerprint(source: ModelSource, dtype: str) -> str:
    """Return the fingerprint of ``source`` loaded in ``dtype`` (see module docstring)."""
    return f"{weights_id(source)}|{dtype}"


def weights_id(source: ModelSource) -> str:
    """Return the dtype-free part of the fingerprint."""
    if source.kind == "peft":
        if source.base is None:
            raise ValueError(f"adapter {source.spec} has no base")
        merged = "+merge" if source.merge else ""
        return f"{weights_id(source.base)}+adapter={source.name}@sha256:{content_hash(source)[:16]}{merged}"
    if source.kind == "hub":
        return f"{source.name}@sha256:{files_hash(model_files(hub_snapshot(source)), hub_snapshot(source))[:16]}"
    prefix = {"gguf": "gguf", "deepspeed": "zero"}.get(source.kind, "sha256")
    return f"{source.name}@{prefix}:{content_hash(source)[:16]}"
