"""What to generate: prompt kinds and decoding settings (every field here is part of a cache key)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, Union

from harness.errors import UserError

if TYPE_CHECKING:
    import torch

ENGINE_VERSION = 1
"""Bump when a change to the engine can change outputs: old cache entries then stop matching."""


@dataclass(frozen=True)
class TokenPrompt:
    """A prompt given as token ids, with optional per-token inputs, a soft prefix and encoder extras.

    - ``token_type_ids``: one type per token (GPT-2 speaker embeddings). Generated tokens, and the
      tokens of a scored continuation, take the prompt's last type, as transformers' ``generate``
      does. Prompts with and without types cannot be mixed in one call.
    - ``prefix``: the name of an embedding table registered with ``Generator.register_prefix``;
      its rows are placed before the tokens (peft prompt-tuning layout: the virtual positions come
      first, count from position 0 and take token type 0). The cache key holds the table's content
      hash, so retrained prompts never replay old outputs. Decoder-only models only.
    - ``encoder_extra``: a JSON value handed, per row, to the call's ``EncoderHook`` (e.g. MAGIC's
      strategy id); part of the cache key. Encoder-decoder models only.
    """

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...] | None = None
    prefix: str | None = None
    encoder_extra: Any = field(default=None, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_ids", tuple(int(t) for t in self.input_ids))
        if self.token_type_ids is not None:
            object.__setattr__(self, "token_type_ids", tuple(int(t) for t in self.token_type_ids))
            if len(self.token_type_ids) != len(self.input_ids):
                raise UserError(f"token prompt: {len(self.token_type_ids)} token types for {len(self.input_ids)} tokens")


Prompt = Union[str, Sequence[Mapping[str, str]], TokenPrompt]
"""A plain text prompt, chat messages rendered with the tokenizer's chat template, or a TokenPrompt."""

Continuation = Union[str, TokenPrompt]
"""What ``loglikelihood`` scores after a prompt: text (tokenized without special tokens) or token ids."""


class EncoderHook(Protocol):
    """Extra encoder-side inputs for encoder-decoder models (e.g. MAGIC's strategy memory).

    The engine pads the encoder inputs of a batch on the right and asks the hook for the encoder
    states the decoder attends to; ``generate``/``loglikelihood`` then decode from them (greedy, beam
    search, sampling, scoring, all batched). ``extras[i]`` is row i's ``TokenPrompt.encoder_extra``
    (None for text prompts). The hook must treat rows independently (no batch statistics) so that
    outputs stay batch-invariant, and it may append positions (return the matching longer mask).
    """

    key: str
    """Identity, version and content hash of whatever the hook reads (e.g.
    ``"magic-memory/v1:<sha256 of the bank>"``); part of every cache key of the call."""

    def encode(self, model: Any, input_ids: "torch.Tensor", attention_mask: "torch.Tensor",
               extras: Sequence[Any]) -> tuple[Any, "torch.Tensor"]:
        """Return (encoder outputs as a transformers ``BaseModelOutput``, their attention mask)."""
        ...

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
    length_penalty: float = 1.0
    """Beam search only: a finished beam scores sum log p / length ** length_penalty (transformers')."""
    no_repeat_ngram_size: int = 0
    """Ban a token that would repeat an n-gram of this size already in the row (0: off; transformers' rule)."""
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stop_token_ids: tuple[int, ...] = ()
    """Token ids that end a reply besides the model's eos (e.g. gpt2_dialogue's speaker tokens)."""

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
        if self.length_penalty != 1.0 and self.num_beams == 1:
            problems.append("length_penalty only applies to beam search (num_beams > 1)")
        if self.no_repeat_ngram_size < 0:
            problems.append(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")
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
        data["stop_token_ids"] = sorted(set(self.stop_token_ids))
        if not data["stop_token_ids"]:
            data.pop("stop_token_ids")  # keeps the keys of every earlier cache entry valid
        if self.length_penalty == 1.0:
            data.pop("length_penalty")  # likewise
        if not self.no_repeat_ngram_size:
            data.pop("no_repeat_ngram_size")  # likewise
        if not self.do_sample:
            for name in ("temperature", "top_p", "top_k", "seed"):
                data.pop(name)
        data["engine"] = ENGINE_VERSION
        return data


def plain_chat(messages: Sequence[Mapping[str, str]]) -> str:
    """Render chat messages for a tokenizer without a chat template ("Role: content" blocks)."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"
