"""``magic``: MAGIC's two models answering ``esconv_strategy`` examples (systems.md sections 6.2-6.5).

Per example: the strategy comes from ``strategy`` = ``inferred`` (default: the strategy model
generates from MAGIC's prompt through the shared generation engine, and ``strategy_parser``
intended|released maps its output to a class), ``gold`` (oracle label) or ``none`` (no memory
vector: the ablation). The response model then decodes with ``decoding`` = ``standard`` (beam 5,
<= 64 new tokens, eos stop, length penalty 1.0; transformers beam search, batched) or ``released``
(the probability-summing 64-step beam, ``decoding.py``). Rows are length-sorted into batches and
every decoded response is stored in the generation cache, keyed by the model's weights, its
inputs and the decoding settings, so nothing is generated twice. ``truncation`` defaults to what
the model was trained with. The predicted label is reported only for ``inferred`` (gold would
score 100 by construction). ``ref_nll`` is the teacher-forced NLL of the reference + eos.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import Example, Response
from harness.system import System
from models.magic.decoding import DECODINGS, model_next_logits, probability_summing_beam_search
from models.magic.features import TRUNCATIONS, FeatureSpec, Featurizer, MagicCollator
from models.magic.prompt import PARSERS, build_prompt, parse_strategy
from models.magic.recipe import MAGIC_FILE, STRATEGY_DIR

SOURCES = ("inferred", "gold", "none")


def _choice(options: dict[str, Any], name: str, default: str, choices: Sequence[str]) -> str:
    value = str(options.get(name) or default)
    if value not in choices:
        raise UserError(f"system 'magic' option {name}: '{value}' is not one of {', '.join(choices)}")
    return value


def _number(options: dict[str, Any], name: str, default: int) -> int:
    try:
        value = int(str(options.get(name, default)))
    except ValueError:
        raise UserError(f"system 'magic' option {name}: expected an integer, got '{options.get(name)}'") from None
    if value < 1:
        raise UserError(f"system 'magic' option {name}: must be at least 1, got {value}")
    return value


class MagicSystem(System):
    """See the module docstring; options: model, strategy, strategy_parser, decoding, truncation,
    strategy_model (a strategy LM source for the released layout), num_beams (5), max_new_tokens (64),
    strategy_max_new_tokens, batch_size (16), device, no_cache, cache_path, seed, heads."""

    name = "magic"
    description = "MAGIC: LoRA strategy inference + BART generator with a per-strategy memory (ECML-PKDD 2024)"
    option_names = ("model", "strategy", "strategy_parser", "decoding", "truncation", "strategy_model", "num_beams",
                    "max_new_tokens", "strategy_max_new_tokens", "batch_size", "device", "no_cache", "cache_path",
                    "seed", "heads", "progress")

    def __init__(self, task: Any, **options: Any) -> None:
        super().__init__(task, **options)
        import torch

        from harness.checkpoints.fingerprint import files_hash, model_files
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
        self.num_beams = _number(options, "num_beams", 5)
        self.max_new_tokens = _number(options, "max_new_tokens", 64)
        batch = str(options.get("batch_size", "auto"))
        self.batch_size = 16 if batch == "auto" else _number(options, "batch_size", 16)
        device = str(options.get("device") or "auto")
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device)
        heads = int(options["heads"]) if options.get("heads") else None
        self.model, self.tokenizer = load_response_model(folder, heads)
        self.model.to(self.device).eval()
        spec = {k: v for k, v in features.items() if k in FeatureSpec.__dataclass_fields__}
        spec.update(truncation=self.truncation, motivation=self.model.config.motivation)
        self.featurizer = Featurizer(self.tokenizer, FeatureSpec(**spec))
        self.fingerprint = f"magic:{files_hash(model_files(folder), folder)[:16]}"
        no_cache = str(options.get("no_cache", False)).lower() in ("true", "1", "yes")
        self.cache = None if no_cache else GenerationCache(Path(str(options["cache_path"])) if options.get("cache_path")
                                                            else default_cache_path())
        self.strategy_generator = self._strategy_generator(options) if self.source == "inferred" else None
        self.progress = str(options.get("progress", True)).lower() not in ("false", "0", "no")
        self.stats = {"generated": 0, "cached": 0}

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
        return Generator.from_source(self.strategy_spec, device=device, cache=self.cache,
                                     progress=str(options.get("progress", True)).lower() not in ("false", "0", "no"))

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
        config = GenerationConfig(max_new_tokens=_number(self.options, "strategy_max_new_tokens", default))
        texts = self.strategy_generator.generate(prompts, config)
        return [parse_strategy(text, prompt, self.parser) for text, prompt in zip(texts, prompts)]

    # --- response decoding ------------------------------------------------------------------------------
    def _decode_batch(self, batch: dict[str, Any]) -> list[str]:
        import torch

        model = self.model
        with torch.no_grad():
            encoded = model.encode(batch["input_ids"], batch["attention_mask"], batch["strategy_ids"],
                                   batch.get("motivation_ids"), batch.get("motivation_mask"))
            if self.decoding == "released":
                step = model_next_logits(model, encoded, encoded.memory_mask, self.num_beams)
                ids = probability_summing_beam_search(step, batch["input_ids"].shape[0], model.config.decoder_start_token_id,
                                                      num_beams=self.num_beams, steps=self.max_new_tokens,
                                                      device=self.device)
            else:
                ids = model.generate(encoder_outputs=encoded, attention_mask=encoded.memory_mask,
                                     num_beams=self.num_beams, max_new_tokens=self.max_new_tokens, length_penalty=1.0,
                                     early_stopping=False, do_sample=False,
                                     decoder_start_token_id=model.config.decoder_start_token_id,
                                     eos_token_id=model.config.eos_token_id, pad_token_id=model.config.pad_token_id)
        return [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def _reference_nll(self, batch: dict[str, Any]) -> list[tuple[float, int]]:
        import torch

        with torch.no_grad():
            out = self.model(**{k: v for k, v in batch.items() if k != "memory"})
        labels = batch["labels"]
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)
        valid = labels != -100
        picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid
        return list(zip((-picked.sum(-1)).tolist(), valid.sum(-1).tolist()))

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return responses (length-sorted batches, cached) with the inferred strategy as label."""
        import torch
        from tqdm.auto import tqdm

        from harness.generation.cache import make_key

        torch.manual_seed(int(self.options.get("seed", 0) or 0))
        chosen = self.strategies(examples)
        rows = []
        for example, (strategy, motivation) in zip(examples, chosen):
            row = self.featurizer.row(example, strategy, motivation, with_target=False)
            if example.references:
                row["labels"] = self.featurizer.target(example.references[0])
            rows.append(row)
        settings = {"decoding": self.decoding, "beams": self.num_beams, "max_new_tokens": self.max_new_tokens}
        keys = [make_key("magic", self.fingerprint, settings, {k: v for k, v in row.items() if k != "labels"}) for row in rows]
        found = self.cache.get_many(list(set(keys))) if self.cache is not None else {}
        order = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["input_ids"]), i))
        collate = MagicCollator(pad_id=self.featurizer.pad, memory_length=self.featurizer.spec.memory_length)
        texts: dict[int, str] = {}
        nll: dict[int, tuple[float, int]] = {}
        bar = tqdm(total=len(rows), desc="magic responses", unit="ex", disable=not self.progress, leave=False)
        for start in range(0, len(order), self.batch_size):
            indices = order[start:start + self.batch_size]
            scored = [i for i in indices if "labels" in rows[i]]
            if scored:
                batch = {k: v.to(self.device) for k, v in collate([rows[i] for i in scored]).items()}
                nll.update(zip(scored, self._reference_nll(batch)))
            todo = [i for i in indices if keys[i] not in found]
            if todo:
                batch = {k: v.to(self.device) for k, v in collate([{k: v for k, v in rows[i].items() if k != "labels"}
                                                                    for i in todo]).items()}
                answers = dict(zip((keys[i] for i in todo), self._decode_batch(batch)))
                found.update(answers)
                if self.cache is not None:
                    self.cache.put_many("magic", self.fingerprint, answers)
            self.stats["generated"] += len(todo)
            self.stats["cached"] += len(indices) - len(todo)
            bar.update(len(indices))
        bar.close()
        for i in range(len(rows)):
            texts[i] = found[keys[i]]
        labels = [s for s, _ in chosen] if self.source == "inferred" else [None] * len(rows)
        return [Response(example_id=e.id, text=texts[i], label=labels[i],
                         ref_nll=nll[i][0] if i in nll else None, ref_tokens=int(nll[i][1]) if i in nll else None,
                         meta={"strategy": chosen[i][0], "motivation": chosen[i][1]} if chosen[i][1] else {"strategy": chosen[i][0]})
                for i, e in enumerate(examples)]

    def info(self) -> dict[str, Any]:
        """Return the switches, the weights' fingerprint and how the checkpoint was trained."""
        info = super().info()
        info.update({"fingerprint": self.fingerprint, "layout": "released" if self.released_layout else "dialbench",
                     "strategy": self.source, "strategy_parser": self.parser, "decoding": self.decoding,
                     "truncation": self.truncation, "motivation": self.model.config.motivation,
                     "num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                     "bank_sizes": self.model.bank.sizes(), "magic": self.meta, "stats": dict(self.stats),
                     "strategy_model": getattr(self, "strategy_spec", None)})
        if self.strategy_generator is not None:
            info["strategy_fingerprint"] = self.strategy_generator.fingerprint
        return info

    def close(self) -> None:
        """Close the cache; drop the model."""
        if self.cache is not None:
            self.cache.close()
        self.model = None  # type: ignore[assignment]
