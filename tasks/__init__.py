"""Task plug-ins, one module per task (registered in ``harness/plugins.py``); data formats in ``formats/``."""
from __future__ import annotations

from pathlib import Path


def samples_dir() -> Path:
    """Return the folder of bundled synthetic samples (written by the project, never real data)."""
    return Path(__file__).resolve().parent / "samples"
