"""What to generate: prompt kinds and decoding settings (every field here is part of a cache key)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence, Union

from harness.errors import UserError

ENGINE_VERSION = 1
"""Bump when a change to the engine can change outputs: old cache entries then stop matching."""

Prompt = Union[str, Sequence[Mapping[str, str]]]
"""A plain text prompt, or chat messages rendered with the tokenizer's chat template."""

TIE_MARGINS = {"float32": 5e-4, "float64": 1e-6, "bfloat16": 0.0, "float16": 0.0}
"""Default near-tie thresholds; half precision noise is too large for re-checks to be cheap."""


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings; everything here is part of the cache key (sampling ones only when sampling)."""

    max_new_tokens: int = 64
    do_sample: bool = False
    num_beams: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.num_beams < 1:
            problems.append(f"num_beams must be >= 1, got {self.num_beams}")
        if self.do_sample and self.num_beams > 1:
            problems.append("beam search with sampling is not supported; choose one")
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.repetition_penalty <= 0:
            problems.append("top_k must be >= 0 and repetition_penalty > 0")
        if any(not s for s in self.stop):
            problems.append("stop strings must not be empty")
        if problems:
            raise UserError("generation config: " + "; ".join(problems))

    @property
    def cacheable(self) -> bool:
        """Return False for unseeded sampling, whose outputs must not be replayed."""
        return not self.do_sample or self.seed is not None

    def key(self) -> dict[str, Any]:
        """Return the normalised settings that can change an output (cache-key part)."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        if not self.do_sample:
            for name in ("temperature", "top_p", "top_k", "seed"):
                data.pop(name)
        data["engine"] = ENGINE_VERSION
        return data


def plain_chat(messages: Sequence[Mapping[str, str]]) -> str:
    """Render chat messages for a tokenizer without a chat template ("Role: content" blocks)."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"
