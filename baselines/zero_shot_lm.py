"""``zero_shot_lm``: an instruction model asked through its chat template with the task's own prompt.

This is "the task's prompt-based system" and the default system of ``dialbench eval`` for a bare
checkpoint: for each example it sends ``task.prompt(example)`` (chat messages) through the shared
generation engine and turns the text into a Response with ``task.parse_output``. It also scores the
first reference as the assistant's reply to the same prompt, so perplexity (``ppl``) is available:
``ref_nll`` is the summed NLL in nats of the reference tokens plus the end token, ``ref_tokens`` that
token count (the same convention as ``gpt2_dialogue``).

The model is loaded at most once per process (``harness.checkpoints.loader`` memoises loads; the runner builds one
system per task) and not at all when every answer is already in the generation cache.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import Example, Response
from harness.system import System
from harness.task import truth

DEFAULT_MODEL = "embedded:smollm2-135m-instruct"


def option_flag(name: str, value: Any) -> bool:
    """Return a boolean option given as bool or text (``--set zero_shot_lm.no_cache=true``)."""
    flag = False if str(value).strip() == "" else truth(value)
    if flag is not None:
        return flag
    raise UserError(f"system 'zero_shot_lm' option {name}: expected true or false, got '{value}'")


class ZeroShotLMSystem(System):
    """Prompt-based generation with any causal or encoder-decoder checkpoint (see module docstring).

    Options: ``model`` (source, default embedded SmolLM2-135M-Instruct), ``batch_size`` (int or
    auto), ``dtype``/``device`` (auto), ``max_new_tokens`` (64), decoding (``do_sample``,
    ``num_beams``, ``temperature``, ``top_p``, ``top_k``, ``repetition_penalty``,
    ``no_repeat_ngram_size``, ``length_penalty`` (beam search), ``seed``),
    ``no_cache``, ``cache_path``, ``trust_remote_code``, ``score_references`` (true),
    ``progress`` (true).
    """

    name = "zero_shot_lm"
    description = "instruction LM through its chat template with the task's prompt (default SmolLM2-135M-Instruct)"
    option_names = ("model", "batch_size", "dtype", "device", "max_new_tokens", "no_cache", "trust_remote_code",
                    "cache_path", "do_sample", "num_beams", "temperature", "top_p", "top_k", "repetition_penalty",
                    "no_repeat_ngram_size", "length_penalty", "seed", "score_references", "progress")

    def __init__(self, task: Any, **options: Any) -> None:
        super().__init__(task, **options)
        from harness.generation.cache import GenerationCache, default_cache_path
        from harness.generation import GenerationConfig, Generator
        from harness.checkpoints.source import parse_source

        self.model_spec = str(options.get("model") or DEFAULT_MODEL)
        parse_source(self.model_spec)  # a bad path fails now, before anything is loaded
        batch_size = str(options.get("batch_size", "auto")).strip().lower()
        do_sample = option_flag("do_sample", options.get("do_sample", False))
        seed = options.get("seed")
        self.config = GenerationConfig(
            max_new_tokens=self.number(options, "max_new_tokens", 64, int),
            do_sample=do_sample,
            num_beams=self.number(options, "num_beams", 1, int),
            temperature=self.number(options, "temperature", 1.0, float),
            top_p=self.number(options, "top_p", 1.0, float),
            top_k=self.number(options, "top_k", 0, int),
            repetition_penalty=self.number(options, "repetition_penalty", 1.0, float),
            no_repeat_ngram_size=self.number(options, "no_repeat_ngram_size", 0, int),
            length_penalty=self.number(options, "length_penalty", 1.0, float),
            seed=None if seed is None else self.number(options, "seed", seed, int),
        )
        self.score_references = option_flag("score_references", options.get("score_references", True))
        no_cache = option_flag("no_cache", options.get("no_cache", False))
        cache_path = Path(str(options["cache_path"])) if options.get("cache_path") else default_cache_path()
        self.cache = None if no_cache else GenerationCache(cache_path)
        self.generator = Generator.from_source(
            self.model_spec,
            dtype=str(options.get("dtype", "auto")), device=str(options.get("device", "auto")),
            trust_remote_code=option_flag("trust_remote_code", options.get("trust_remote_code", False)),
            batch_size="auto" if batch_size == "auto" else self.number(options, "batch_size", batch_size, int),
            cache=self.cache, progress=option_flag("progress", options.get("progress", True)),
        )

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return the task-parsed generations, with ref_nll/ref_tokens of the first reference."""
        from harness.generation.cache import make_key

        prompts = [self.task.prompt(example) for example in examples]
        texts = self.generator.generate(prompts, self.config)
        config_key = self.config.key()
        responses = []
        for example, prompt, text in zip(examples, prompts, texts):
            response = self.task.parse_output(example, text)
            # What samples.jsonl shows: the messages sent, the raw generation and its cache key.
            messages = [dict(m) for m in prompt]
            responses.append(replace(response, meta={
                **response.meta, "prompt": messages, "raw_output": text,
                "generation_key": make_key("generate", self.generator.fingerprint, config_key, messages)}))
        if not self.score_references:
            return responses
        scored = [i for i, example in enumerate(examples) if example.references and example.references[0].strip()]
        values = self.generator.loglikelihood([(prompts[i], examples[i].references[0]) for i in scored], add_eos=True)
        for i, (nll, tokens) in zip(scored, values):
            responses[i] = replace(responses[i], ref_nll=nll, ref_tokens=tokens)
        return responses

    def info(self) -> dict[str, Any]:
        """Return name, options, model fingerprint, decoding settings and cache/engine counters."""
        info = super().info()
        info.update({
            "fingerprint": self.generator.fingerprint,
            "dtype": self.generator.dtype,
            "device": self.generator.device,
            "generation": self.config.key(),
            "cache": str(self.cache.path) if self.cache else None,
            "engine_stats": dict(self.generator.stats),
        })
        loaded = getattr(self.generator, "loaded_info", None)
        if loaded:
            info["model"] = loaded
        else:  # every answer came from the cache: describe the source without loading it
            from harness.checkpoints.source import parse_source

            source = parse_source(self.model_spec)
            info["model"] = {"source": source.describe(), "dtype": self.generator.dtype}
            quantisation = re.search(r"\.(I?Q\d\w*|F16|BF16)$", source.path.stem) if source.kind == "gguf" and source.path else None
            if quantisation:
                info["model"]["quantisation"] = f"{quantisation.group(1)} GGUF, de-quantised to {self.generator.dtype}"
        return info

    def close(self) -> None:
        """Close the cache connection (the model stays memoised for the next task)."""
        if self.cache is not None:
            self.cache.close()
