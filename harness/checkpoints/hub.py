"""Hub snapshots: the only place a model may be fetched, and only when the hub is not offline."""
from __future__ import annotations

import os
from pathlib import Path

from harness.checkpoints.source import ModelSource
from harness.errors import UserError, first_line


def hub_snapshot(source: ModelSource) -> Path:
    """Return the local snapshot folder of a hub model (downloading it when online)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise UserError(f"{source.spec}: no such local path, and the hub is offline (HF_HUB_OFFLINE is set)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source.name, revision=source.revision))
    except Exception as err:  # network, 404, gated repo: all things the user must fix
        raise UserError(f"{source.spec}: not a local path, and fetching it from the hub failed "
                        f"({type(err).__name__}: {first_line(err)})") from None
