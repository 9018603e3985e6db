"""``spt``: Selective Prompt Tuning on a frozen causal LM (systems.md section 2.4 inference).

For each example: build ``{bos}given persona: ...; context: ... R:``, score all K prompts with the
selector, take the argmax prompt and decode greedily (32 new tokens by default); the ``spt`` metric
profile then cuts predictions at ``R:|Q:|Summary:|\\n|:``. ``ref_nll`` is the summed NLL of the first
reference plus eos under the selected prompt (for perplexity). Generation and scoring go through the
shared engine (``harness.generation``): each prompt table is registered as a soft prefix and every
row names its selected one, so rows whose prompts differ share a batch; the engine's cache key holds
the prefix's content hash, so nothing is generated twice and retrained prompts never replay.

``model`` is a dialbench SPT checkpoint (``dialbench train spt``) or a released ``ds_ckpt`` folder
(consolidated once, see ``checkpoint.py``; ``base=`` then names a local base model, and
``released_config=`` the training yml when it is not beside ``ds_ckpt``). Options can be written
``NAME`` or ``spt.NAME`` (``--set spt.pooling=released``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import Example, Response
from harness.system import System

def prefix_name(choice: int) -> str:
    """Return the engine's name of prompt table ``choice``."""
    return f"spt-{int(choice)}"


def engine_for(model: Any, tokenizer: Any, fingerprint: str, **kwargs: Any) -> Any:
    """Return a Generator on ``model``'s frozen base with every prompt table registered as a soft prefix."""
    from harness.generation import Generator

    generator = Generator(model=model.base, tokenizer=tokenizer, fingerprint=fingerprint, **kwargs)
    for k in range(model.prompts.shape[0]):
        generator.register_prefix(prefix_name(k), model.prompts[k].detach())
    return generator


INFERENCE_SWITCHES = ("pooling", "max_new_tokens", "max_length", "max_context_turns")
"""SPTConfig fields that may be changed at evaluation time (they do not change the trained tensors)."""


class SPTSystem(System):
    """Answers with an SPT checkpoint; see the module docstring for options."""

    name = "spt"
    description = "Selective Prompt Tuning: K soft prompts + selector on a frozen LM (hqsiswiliam/SPT)"
    option_names = ("model", "base", "released_config", "batch_size", "device", "dtype", "no_cache", "cache_path",
                    "score_references", "seed", "progress", *INFERENCE_SWITCHES)

    def __init__(self, task: Any, **options: Any) -> None:
        options = {key[4:] if key.startswith("spt.") else key: value for key, value in options.items()}
        super().__init__(task, **options)
        from harness.checkpoints.loader import resolve_device, resolve_dtype
        from harness.checkpoints.source import deepspeed_tag_dir, parse_source
        from harness.checkpoints.fingerprint import weights_id
        from harness.generation import GenerationConfig
        from harness.generation.cache import GenerationCache, default_cache_path
        from models.spt import checkpoint
        from models.spt.format import SPTFormat
        from models.spt.model import load_spt

        model_dir = options.get("model")
        if not model_dir:
            raise UserError("system 'spt' needs option model=DIR (a checkpoint from `dialbench train spt` or a released ds_ckpt)")
        path = Path(str(model_dir)).expanduser()
        if not path.is_dir():
            raise UserError(f"{model_dir}: SPT checkpoint directory not found (system 'spt' option model)")
        self.released = not checkpoint.is_checkpoint(path) and deepspeed_tag_dir(path) is not None
        folder = checkpoint.consolidate_released(path, base=options.get("base"), yml=options.get("released_config")) \
            if self.released else path
        self.device = resolve_device(str(options.get("device", "auto")))
        self.dtype = resolve_dtype(str(options.get("dtype", "auto")), self.device)
        self.model, self.tokenizer = load_spt(folder, dtype=self.dtype, device=self.device,
                                                     base=None if self.released else options.get("base"))
        changes = {name: options[name] for name in INFERENCE_SWITCHES if name in options}
        if changes:
            self.model.spt = self.model.spt.with_options(changes)
        self.config = self.model.spt
        self.format = SPTFormat(self.tokenizer, self.config.max_length, self.config.max_context_turns)
        batch_size = str(options.get("batch_size", "auto")).strip().lower()
        self.batch_size = 16 if batch_size == "auto" else int(batch_size)
        self.score_references = self.flag(options, "score_references", True)
        cache_path = Path(str(options["cache_path"])) if options.get("cache_path") else default_cache_path()
        self.cache = None if self.flag(options, "no_cache", False) else GenerationCache(cache_path)
        self.fingerprint = f"{weights_id(parse_source(str(folder)))}|{self.dtype}"
        self.generation = GenerationConfig(max_new_tokens=self.config.max_new_tokens)
        self.generator = engine_for(self.model, self.tokenizer, self.fingerprint, cache=self.cache,
                                    batch_size=self.batch_size, progress=self.flag(options, "progress", True))

    def choose(self, prompts: Sequence[Sequence[int]]) -> list[int]:
        """Return the selected prompt of each row (selector on the left-padded inference prompts)."""
        import torch

        choices: list[int] = []
        with torch.no_grad():
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start:start + self.batch_size]
                width = max(len(p) for p in chunk)
                ids = torch.tensor([[self.model.pad_id] * (width - len(p)) + list(p) for p in chunk], device=self.device)
                mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=self.device)
                choices += self.model.select(ids, mask).tolist()
        return choices

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return greedy replies from each example's selected prompt, with ref_nll of the first reference."""
        from harness.generation import TokenPrompt

        prompts = [self.format.prompt_ids(example) for example in examples]
        choices = self.choose(prompts)
        rows = [TokenPrompt(ids, prefix=prefix_name(choice)) for ids, choice in zip(prompts, choices)]
        texts = self.generator.generate(rows, self.generation)
        nll: dict[int, tuple[float, int]] = {}
        if self.score_references:
            scored = [i for i, e in enumerate(examples) if e.references and e.references[0].strip()]
            pairs = []
            for i in scored:
                target = self.tokenizer.encode(" " + examples[i].references[0].strip(), add_special_tokens=False)
                target = target[: self.config.max_length - 2]
                keep = self.config.max_length - len(target) - 1
                pairs.append((TokenPrompt(prompts[i][-keep:], prefix=prefix_name(choices[i])), TokenPrompt(target)))
            nll = dict(zip(scored, self.generator.loglikelihood(pairs, add_eos=True)))
        return [Response(example_id=example.id, text=text, ref_nll=nll[i][0] if i in nll else None,
                         ref_tokens=nll[i][1] if i in nll else None, meta={"spt_prompt": int(choice)})
                for i, (example, text, choice) in enumerate(zip(examples, texts, choices))]

    def info(self) -> dict[str, Any]:
        """Return options, fingerprint, the full SPTConfig with its quirk switches, and training metadata."""
        info = super().info()
        info.update({"fingerprint": self.fingerprint, "dtype": self.dtype, "device": self.device,
                     "spt": self.config.to_json(), "quirks": self.config.quirks(), "released": self.released,
                     "generation": self.generation.key(), "engine_stats": dict(self.generator.stats)})
        meta = Path(str(self.options["model"])) / "dialbench_training.json"
        if meta.is_file():
            import json

            trained = json.loads(meta.read_text(encoding="utf-8"))
            info["training"] = {key: trained.get(key) for key in ("system", "preset", "max_steps", "data")}
        return info

    def close(self) -> None:
        """Close the cache and drop the model."""
        if self.cache is not None:
            self.cache.close()
        self.model = None  # type: ignore[assignment]
