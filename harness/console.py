"""Keep stdout for results: DeepSpeed's logger, which writes to stdout, is moved to stderr.

DeepSpeed creates its "DeepSpeed" logger with a ``StreamHandler(sys.stdout)`` when
``deepspeed.utils.logging`` is first imported (transformers imports it on its own), and warns
"Setting accelerator to CPU" through it, so ``dialbench table > t.md`` would capture the warning.
The logger cannot be configured before it exists, so a one-shot import hook retargets its handler
the moment the module has run. Hand-written: DeepSpeed offers no setting for its stream.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
from typing import Any

DEEPSPEED_LOGGING = "deepspeed.utils.logging"


def deepspeed_to_stderr() -> None:
    """Point the DeepSpeed logger's stdout handlers at stderr."""
    for handler in logging.getLogger("DeepSpeed").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


class _AfterDeepSpeedLogging(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the real loader of ``deepspeed.utils.logging`` to fix its handler."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != DEEPSPEED_LOGGING:
            return None
        sys.meta_path.remove(self)  # one shot, and no recursion into ourselves
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run_module(module)
            deepspeed_to_stderr()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def keep_stdout_for_results() -> None:
    """Install the hook (or fix the handler now when DeepSpeed is already imported)."""
    if DEEPSPEED_LOGGING in sys.modules:
        deepspeed_to_stderr()
    elif not any(isinstance(f, _AfterDeepSpeedLogging) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterDeepSpeedLogging())
