"""``magic``: MAGIC's two models answering ``esconv_strategy`` examples (systems.md sections 6.2-6.5).

Per example: the strategy comes from ``strategy`` = ``inferred`` (default: the strategy model
generates from MAGIC's prompt through the shared generation engine, and ``strategy_parser``
intended|released maps its output to a class), ``gold`` (oracle label) or ``none`` (no memory
vector: the ablation). The response model then decodes with ``decoding`` = ``standard`` (beam 5,
<= 64 new tokens, eos stop, length penalty 1.0, no n-gram block; transformers beam search, batched;
a checkpoint's ``standard_decoding`` in ``magic.json`` may change the last two, and ``--set`` wins
over both) or ``released`` (the probability-summing 64-step beam, ``decoding.py``). Rows are
length-sorted into batches and every decoded response is stored in the generation cache, keyed by
the model's weights, its inputs and the decoding settings, so nothing is generated twice.
``truncation`` defaults to what the model was trained with. The predicted label is reported only
for ``inferred`` (gold would score 100 by construction). ``ref_nll`` is the teacher-forced NLL of
the reference + eos.

``expand_contractions`` (default true) applies MAGIC's preprocessing ("I ' m" -> "I am", as in
``data/add_memory_motivation.py``, which expands context, response and memories of every split) to
what the models read: the context, the situation, the memories and the reference scored for
``ref_nll``. Both models are trained on expanded text, so unexpanded inputs would be words their
tokenizer and weights never saw. The references the metrics compare against stay the task's
(``--task-option esconv_strategy.expand_contractions=true`` expands those too, MAGIC's recipe).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import Example, Response
from harness.system import System
from models.magic.decoding import DECODINGS, model_next_logits, probability_summing_beam_search
from models.magic.features import NO_MOTIVATION, TRUNCATIONS, FeatureSpec, Featurizer
from models.magic.hook import StrategyMemoryHook
from models.magic.prompt import PARSERS, build_prompt, parse_strategy
from models.magic.recipe import MAGIC_FILE, STRATEGY_DIR

SOURCES = ("inferred", "gold", "none")
NEUTRAL_BEAM: dict[str, Any] = {"length_penalty": 1.0, "no_repeat_ngram_size": 0}
"""The beam settings of MAGIC's README (``standard`` decoding); the released search has no such terms."""


def _choice(options: dict[str, Any], name: str, default: str, choices: Sequence[str]) -> str:
    value = str(options.get(name) or default)
    if value not in choices:
        raise UserError(f"system 'magic' option {name}: '{value}' is not one of {', '.join(choices)}")
    return value


class MagicSystem(System):
    """See the module docstring; options: model, strategy, strategy_parser, decoding, truncation,
    strategy_model (a strategy LM source for the released layout), num_beams (5), max_new_tokens (64),
    length_penalty (1.0) and no_repeat_ngram_size (0) for ``standard`` only, defaulting to the
    checkpoint's ``standard_decoding`` (the ``tiny`` preset ships its own, see the recipe),
    strategy_max_new_tokens, batch_size (16), device, no_cache, cache_path, seed, heads,
    expand_contractions (true)."""

    name = "magic"
    description = "MAGIC: LoRA strategy inference + BART generator with a per-strategy memory (ECML-PKDD 2024)"
    option_names = ("model", "strategy", "strategy_parser", "decoding", "truncation", "strategy_model", "num_beams",
                    "max_new_tokens", "length_penalty", "no_repeat_ngram_size", "strategy_max_new_tokens", "batch_size",
                    "device", "no_cache", "cache_path", "seed", "heads", "progress", "expand_contractions")

    def __init__(self, task: Any, **options: Any) -> None:
        super().__init__(task, **options)
        import torch

        from harness.checkpoints.fingerprint import files_hash, model_files
        from harness.generation import Generator
        from harness.generation.cache import GenerationCache, default_cache_path
        from models.magic.checkpoint import is_released_layout, load_response_model

        folder = Path(str(options.get("model") or ""))
        if not str(options.get("model") or "") or not folder.is_dir():
            raise UserError(f"system 'magic' needs option model=DIR (a `dialbench train magic` output or the released "
                            f"layout); '{options.get('model')}' is not a folder")
        self.folder = folder
        self.released_layout = is_released_layout(folder)
        self.meta = self._read_meta(folder)
        self.source = _choice(options, "strategy", "inferred", SOURCES)
        self.parser = _choice(options, "strategy_parser", "intended", PARSERS)
        self.decoding = _choice(options, "decoding", "standard", DECODINGS)
        features = dict(self.meta.get("features") or {})
        self.truncation = _choice(options, "truncation", features.get("truncation", "right" if self.released_layout else "left"),
                                  TRUNCATIONS)
        self.num_beams = self.number(options, "num_beams", 5, minimum=1)
        self.max_new_tokens = self.number(options, "max_new_tokens", 64, minimum=1)
        # the user's option, else the checkpoint's default (a preset's, tuned on its own training split),
        # else MAGIC's README setting
        beam_defaults = {**NEUTRAL_BEAM, **(self.meta.get("standard_decoding") or {})}
        self.length_penalty = self.number(options, "length_penalty", beam_defaults["length_penalty"], float)
        self.no_repeat_ngram_size = self.number(options, "no_repeat_ngram_size", beam_defaults["no_repeat_ngram_size"],
                                                minimum=0)
        if self.decoding == "released":
            changed = [name for name in NEUTRAL_BEAM if name in options
                       and getattr(self, name) != NEUTRAL_BEAM[name]]
            if changed:
                raise UserError(f"system 'magic' option {changed[0]} applies to decoding=standard only; the released "
                                "probability-summing search has no such term")
            self.length_penalty = NEUTRAL_BEAM["length_penalty"]
            self.no_repeat_ngram_size = NEUTRAL_BEAM["no_repeat_ngram_size"]
        batch = str(options.get("batch_size", "auto"))
        self.batch_size: Any = "auto" if batch == "auto" else self.number(options, "batch_size", 16, minimum=1)
        device = str(options.get("device") or "auto")
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device)
        heads = int(options["heads"]) if options.get("heads") else None
        self.model, self.tokenizer = load_response_model(folder, heads)
        self.model.to(self.device).eval()
        spec = {k: v for k, v in features.items() if k in FeatureSpec.__dataclass_fields__}
        spec.update(truncation=self.truncation, motivation=self.model.config.motivation)
        self.featurizer = Featurizer(self.tokenizer, FeatureSpec(**spec))
        self.fingerprint = f"magic:{files_hash(model_files(folder), folder)[:16]}"
        self.hook = StrategyMemoryHook(self.fingerprint, self.featurizer.pad)
        no_cache = self.flag(options, "no_cache", False)
        self.cache = None if no_cache else GenerationCache(Path(str(options["cache_path"])) if options.get("cache_path")
                                                            else default_cache_path())
        self.progress = self.flag(options, "progress", True)
        self.expand = self.flag(options, "expand_contractions", True)
        self.strategy_generator = self._strategy_generator(options) if self.source == "inferred" else None
        self.generator = Generator(self.model, self.tokenizer, fingerprint=self.fingerprint, cache=self.cache,
                                   batch_size=self.batch_size, progress=self.progress,
                                   device="cuda" if self.device.type == "cuda" else "cpu", dtype="float32")
        self.stats: dict[str, int] = {}

    # --- setup ---------------------------------------------------------------------------------------
    @staticmethod
    def _read_meta(folder: Path) -> dict[str, Any]:
        path = folder / MAGIC_FILE
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise UserError(f"{path}: not valid JSON ({err})") from None

    def _strategy_generator(self, options: dict[str, Any]) -> Any:
        """Return the shared-engine Generator of the strategy model (base + LoRA adapter)."""
        from harness.generation import Generator

        spec = options.get("strategy_model")
        if not spec:
            adapter = self.folder / str(self.meta.get("strategy_model") or STRATEGY_DIR)
            if not (adapter / "adapter_config.json").is_file() and not (adapter / "config.json").is_file():
                raise UserError(f"{adapter}: no strategy model; train it (`dialbench train magic`), give "
                                "strategy_model=SOURCE, or use strategy=gold|none")
            base = self.meta.get("strategy_base")
            spec = f"{base}+adapter={adapter}" if base and (adapter / "adapter_config.json").is_file() else str(adapter)
        self.strategy_spec = str(spec)
        device = "cuda" if self.device.type == "cuda" else "cpu"
        return Generator.from_source(self.strategy_spec, device=device, cache=self.cache, progress=self.progress)

    # --- strategy inference ----------------------------------------------------------------------------
    def strategies(self, examples: Sequence[Example]) -> list[tuple[str | None, str]]:
        """Return (strategy or None, motivation) per example for the chosen strategy source."""
        if self.source == "gold":
            return [(example.label, "") for example in examples]
        if self.source == "none":
            return [(None, "") for _ in examples]
        from harness.generation import GenerationConfig

        turns = self.meta.get("strategy_prompt_turns")
        prompts = [build_prompt(example.context, turns) for example in examples]
        default = 80 if (self.meta.get("options") or {}).get("motivations") else 24
        config = GenerationConfig(max_new_tokens=self.number(self.options, "strategy_max_new_tokens", default, minimum=1))
        texts = self.strategy_generator.generate(prompts, config)
        return [parse_strategy(text, prompt, self.parser) for text, prompt in zip(texts, prompts)]

    # --- response decoding ------------------------------------------------------------------------------
    def prompts(self, examples: Sequence[Example], chosen: Sequence[tuple[str | None, str]]) -> list[Any]:
        """Return the engine prompts: context ids with the strategy id (and motivation ids) as encoder extras."""
        from harness.generation import TokenPrompt
        from models.magic.strategies import strategy_id

        prompts = []
        for example, (strategy, motivation) in zip(examples, chosen):
            extra: dict[str, Any] = {"strategy": -1 if strategy is None else strategy_id(strategy, f"example {example.id}")}
            if self.model.config.motivation == "encoded":
                extra["motivation"] = self.featurizer.framed(motivation or NO_MOTIVATION, self.featurizer.spec.max_motivation)
            prompts.append(TokenPrompt(self.featurizer.source(example), encoder_extra=extra))
        return prompts

    def released_decode(self, prompts: Sequence[Any]) -> list[str]:
        """Return the released probability-summing beam search's texts (batched, length-sorted, cached)."""
        import torch

        from harness.generation.cache import make_key

        settings = {"decoding": "released", "beams": self.num_beams, "steps": self.max_new_tokens, "hook": self.hook.key}
        keys = [make_key("magic-released", self.fingerprint, settings,
                         {"ids": list(p.input_ids), "extra": p.encoder_extra}) for p in prompts]
        found = self.cache.get_many(list(set(keys))) if self.cache is not None else {}
        todo = sorted({k: i for i, k in enumerate(keys) if k not in found}.values(), key=lambda i: (-len(prompts[i].input_ids), i))
        size = 16 if self.batch_size == "auto" else int(self.batch_size)
        for start in range(0, len(todo), size):
            batch = todo[start:start + size]
            width = max(len(prompts[i].input_ids) for i in batch)
            ids = torch.tensor([list(prompts[i].input_ids) + [self.featurizer.pad] * (width - len(prompts[i].input_ids))
                                for i in batch], device=self.device)
            mask = torch.tensor([[1] * len(prompts[i].input_ids) + [0] * (width - len(prompts[i].input_ids)) for i in batch],
                                device=self.device)
            with torch.no_grad():
                encoded, cross_mask = self.hook.encode(self.model, ids, mask, [prompts[i].encoder_extra for i in batch])
                step = model_next_logits(self.model, encoded, cross_mask, self.num_beams)
                out = probability_summing_beam_search(step, len(batch), self.model.config.decoder_start_token_id,
                                                      num_beams=self.num_beams, steps=self.max_new_tokens, device=self.device)
            answers = {keys[i]: text.strip() for i, text in zip(batch, self.tokenizer.batch_decode(out, skip_special_tokens=True))}
            found.update(answers)
            if self.cache is not None:
                self.cache.put_many("magic-released", self.fingerprint, answers)
        self.stats["released_generated"] = self.stats.get("released_generated", 0) + len(todo)
        return [found[k] for k in keys]

    def model_view(self, example: Example) -> Example:
        """Return ``example`` as MAGIC's preprocessing leaves it (contractions expanded), or as is."""
        if not self.expand:
            return example
        from tasks.formats.esconv import expand_contractions as expand

        inputs = dict(example.inputs)
        if isinstance(inputs.get("situation"), str):
            inputs["situation"] = expand(inputs["situation"])
        if inputs.get("response_memory"):
            inputs["response_memory"] = tuple(expand(str(text)) for text in inputs["response_memory"])
        return replace(example, context=tuple(replace(turn, text=expand(turn.text)) for turn in example.context),
                       references=tuple(expand(text) for text in example.references), inputs=inputs)

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return responses with the inferred strategy as label and the reference's NLL."""
        from harness.generation import GenerationConfig, TokenPrompt

        examples = [self.model_view(example) for example in examples]
        chosen = self.strategies(examples)
        prompts = self.prompts(examples, chosen)
        if self.decoding == "released":
            texts = self.released_decode(prompts)
        else:
            config = GenerationConfig(max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                                      length_penalty=self.length_penalty,
                                      no_repeat_ngram_size=self.no_repeat_ngram_size)
            texts = self.generator.generate(prompts, config, encoder_hook=self.hook)
        scored = [i for i, e in enumerate(examples) if e.references and e.references[0].strip()]
        pairs = [(prompts[i], TokenPrompt(self.featurizer.target(examples[i].references[0]))) for i in scored]
        values = dict(zip(scored, self.generator.loglikelihood(pairs, encoder_hook=self.hook))) if pairs else {}
        responses = []
        for i, example in enumerate(examples):
            strategy, motivation = chosen[i]
            meta = {"strategy": strategy, **({"motivation": motivation} if motivation else {})}
            nll = values.get(i)
            responses.append(Response(example_id=example.id, text=texts[i],
                                      label=strategy if self.source == "inferred" else None,
                                      ref_nll=None if nll is None else float(nll[0]),
                                      ref_tokens=None if nll is None else int(nll[1]), meta=meta))
        return responses

    def info(self) -> dict[str, Any]:
        """Return the switches, the weights' fingerprint and how the checkpoint was trained."""
        info = super().info()
        info.update({"fingerprint": self.fingerprint, "layout": "released" if self.released_layout else "dialbench",
                     "strategy": self.source, "strategy_parser": self.parser, "decoding": self.decoding,
                     "truncation": self.truncation, "motivation": self.model.config.motivation,
                     "expand_contractions": self.expand,
                     "num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                     "length_penalty": self.length_penalty, "no_repeat_ngram_size": self.no_repeat_ngram_size,
                     "bank_sizes": self.model.bank.sizes(), "magic": self.meta,
                     "stats": {**self.stats, **dict(self.generator.stats)},
                     "strategy_model": getattr(self, "strategy_spec", None)})
        if self.strategy_generator is not None:
            info["strategy_fingerprint"] = self.strategy_generator.fingerprint
        return info

    def close(self) -> None:
        """Close the cache; drop the model."""
        if self.cache is not None:
            self.cache.close()
        self.model = None  # type: ignore[assignment]
