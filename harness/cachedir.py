"""Where dialbench keeps what it can recompute: converted models, file hashes, the generation cache."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "DIALBENCH_CACHE"
"""Environment variable naming the cache folder (converted models, generation cache)."""


def cache_root() -> Path:
    """Return the dialbench cache folder: ``$DIALBENCH_CACHE`` or ``~/.cache/dialbench``."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "dialbench"
    return root
