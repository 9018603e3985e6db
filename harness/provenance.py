"""What a run needs to be re-run and traced: versions, platform, data hashes, seeds.

Every number in a leaderboard must trace back to the command and config that made it; config.json
is written from these helpers.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import random
import sys
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "dialbench", "torch", "transformers", "peft", "accelerate", "deepspeed", "trl", "nltk",
    "pycocoevalcap", "rouge-score", "bert-score", "sacrebleu", "scikit-learn", "tabulate",
    "sentence-transformers", "gguf",
)


def package_versions() -> dict[str, str | None]:
    """Return the installed version of every package that can move a number (None if absent)."""
    versions: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment() -> dict[str, Any]:
    """Return interpreter, platform and package versions."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": package_versions(),
    }


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 of a file (or of a directory's files in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (when installed) so sampled outputs and bootstraps repeat."""
    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass
