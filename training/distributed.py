"""DeepSpeed configs and the process environment DeepSpeed needs, on GPUs and on this CPU.

The shipped ZeRO-2/ZeRO-3 configs (``training/deepspeed/*.json``) leave batch size, accumulation,
clipping and precision as ``"auto"`` so the Hugging Face Trainer fills them from one TrainConfig:
bf16 on GPUs that support it, fp32 on CPU. They name no optimizer or scheduler on purpose: the
Trainer then hands DeepSpeed a torch AdamW and transformers' scheduler, which keeps the schedules
identical with and without DeepSpeed and avoids compiling DeepSpeed's own optimizer ops on CPU.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from harness.errors import DataError, UserError

CONFIG_DIR = Path(__file__).resolve().parent / "deepspeed"
SHIPPED = {"zero2": CONFIG_DIR / "zero2.json", "zero3": CONFIG_DIR / "zero3.json"}


def load_deepspeed_config(spec: str) -> dict[str, Any]:
    """Return the DeepSpeed config named by ``spec`` ("zero2", "zero3" or a JSON file path).

    A file that does not parse is a DataError pointing at the line, not a DeepSpeed traceback later.
    """
    path = SHIPPED.get(spec, Path(spec))
    if not path.is_file():
        raise UserError(f"--deepspeed: '{spec}' is neither {' nor '.join(SHIPPED)} nor an existing JSON file")
    text = path.read_text(encoding="utf-8")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, "deepspeed config", f"invalid JSON: {err.msg}") from None
    if not isinstance(config, dict):
        raise DataError(path, 1, "deepspeed config", "must be a JSON object")
    zero = config.get("zero_optimization", {})
    stage = zero.get("stage", 0) if isinstance(zero, dict) else None
    if stage not in (0, 1, 2, 3):
        raise DataError(path, None, "zero_optimization.stage", f"must be 0, 1, 2 or 3, got {stage!r}")
    return config


def zero_stage(config: dict[str, Any] | None) -> int:
    """Return the ZeRO stage of a DeepSpeed config (0 without DeepSpeed)."""
    return int((config or {}).get("zero_optimization", {}).get("stage", 0))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_environment() -> bool:
    """Set what DeepSpeed expects to find; return True when this is a single, unlaunched process.

    Under ``deepspeed``/``torchrun`` the launcher has set RANK/WORLD_SIZE and nothing changes. A plain
    ``dialbench train --deepspeed ...`` becomes a world of one (gloo on CPU, chosen by DeepSpeed's CPU
    accelerator). The comm extension DeepSpeed compiles on first use (~30 s on CPU) is kept in a
    cached TORCH_EXTENSIONS_DIR so later runs skip the compile.
    """
    from harness.cachedir import cache_root

    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(cache_root() / "torch_extensions"))
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
        return False
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=os.environ.get("MASTER_PORT") or str(_free_port()))
    return True
