"""``gpt2_dialogue``: GPT-2 fine-tuned on multi-turn dialogue with speaker tokens (systems.md §4).

The input format (``format.py``) is shared with the training recipe (``recipe.py``): ``<bos>`` +
``[<sp1>|<sp2>] + utterance`` per turn + ``<sp2>`` (+ target + eos when training); token-type ids
repeat each utterance's speaker token (``<bos>`` takes the first speaker's, the response and eos
take ``<sp2>``); the loss covers only the target and eos.

Generation and reference NLL go through the shared engine with token-type prompts
(``harness.generation.TokenPrompt``): the engine gives generated and scored tokens the prompt's
last type, and the prompt ends with ``<sp2>``, so every reply token gets type ``<sp2>`` exactly as
in the paper's inference loop. The checkpoint loads through ``harness.checkpoints`` (fingerprint,
safetensors check, lazily: a fully cached run never loads it) and outputs are cached.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, cast

from harness.errors import UserError
from harness.records import Example, Response, Turn
from harness.system import System
from models.gpt2_dialogue.format import MAX_TURNS, SILENCE, DialogueFormat


class GPT2DialogueSystem(System):
    """Answers with a GPT-2 checkpoint trained by ``dialbench train gpt2_dialogue``.

    Options: ``model`` (checkpoint directory, required), ``batch_size`` (int or auto), ``device``
    (auto), ``dtype`` (auto: float32 on CPU, bfloat16 on a GPU that has it), ``max_new_tokens``
    (64), ``do_sample`` (false: greedy, for reproducible scored runs; the paper samples), ``top_p``
    (0.8, the paper's nucleus; no top-k, no temperature), ``seed`` (0), ``max_turns`` (5: the prompt
    keeps the last max_turns-1 context utterances), ``no_cache``, ``cache_path``, ``progress``.
    ``ref_nll`` is the summed NLL of the first reference plus eos under the same prompt,
    ``ref_tokens`` its token count (reference tokens + 1).
    """

    name = "gpt2_dialogue"
    description = "GPT-2 fine-tuned on multi-turn dialogue with speaker tokens (devjwsong)"
    option_names = ("model", "batch_size", "device", "dtype", "max_new_tokens", "do_sample", "top_p", "seed",
                    "max_turns", "no_cache", "cache_path", "progress")

    def __init__(self, task: Any, **options: Any) -> None:
        super().__init__(task, **options)
        from transformers import AutoConfig, AutoTokenizer

        from harness.generation import GenerationConfig, Generator
        from harness.generation.cache import GenerationCache, default_cache_path

        model_dir = options.get("model")
        if not model_dir:
            raise UserError("system 'gpt2_dialogue' needs option model=DIR (a checkpoint from `dialbench train gpt2_dialogue`)")
        if not Path(model_dir).is_dir():
            raise UserError(f"{model_dir}: checkpoint directory not found (system 'gpt2_dialogue' option model)")
        batch_size = str(options.get("batch_size", "auto")).strip().lower()
        self.max_new_tokens = int(options.get("max_new_tokens", 64))
        self.do_sample = self.flag(options, "do_sample", False)
        self.top_p = float(options.get("top_p", 0.8))
        self.seed = int(options.get("seed", 0))
        self.max_turns = int(options.get("max_turns", MAX_TURNS))
        try:
            config = AutoConfig.from_pretrained(str(model_dir))
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        except (OSError, ValueError) as err:
            raise UserError(f"{model_dir}: cannot read checkpoint config or tokenizer ({type(err).__name__})") from None
        if config.model_type != "gpt2":
            raise UserError(f"{model_dir}: model type '{config.model_type}' is not gpt2 (token types need GPT-2)")
        self.format = DialogueFormat.of(self.tokenizer, where=str(model_dir))
        self.n_ctx = int(config.n_positions)
        self.cache = None if self.flag(options, "no_cache", False) else GenerationCache(
            Path(str(options["cache_path"])) if options.get("cache_path") else default_cache_path())
        self.generator = Generator.from_source(
            str(model_dir), dtype=str(options.get("dtype", "auto")), device=str(options.get("device", "auto")),
            batch_size="auto" if batch_size == "auto" else int(batch_size), cache=self.cache,
            progress=self.flag(options, "progress", True))
        stops = (self.format.sp1, self.format.sp2, self.format.bos)  # eos ends a reply anyway
        sampling = {"do_sample": True, "top_p": self.top_p, "top_k": 0, "temperature": 1.0, "seed": self.seed}
        self.config = GenerationConfig(max_new_tokens=self.max_new_tokens, stop_token_ids=stops,
                                       **(sampling if self.do_sample else {}))

    @property
    def model(self) -> Any:
        """The loaded GPT-2 (loaded on first use)."""
        return self.generator.model_state().model

    # --- inputs ------------------------------------------------------------------------------------
    def _context(self, turns: Sequence[Turn], room: int) -> list[tuple[int, list[int]]]:
        """Return the last max_turns-1 utterances, dropping the oldest until ``room`` tokens suffice."""
        turns = [turn for turn in turns if turn.text.strip() != SILENCE][-(self.max_turns - 1):] if self.max_turns > 1 else []
        context = [(self.format.speaker(t.speaker), self.tokenizer.encode(t.text, add_special_tokens=False)) for t in turns]
        while context and 2 + sum(1 + len(ids) for _, ids in context) > room:
            context = context[1:]
        return context

    def prompt(self, example: Example) -> dict[str, list[int]]:
        """Return the generation prompt of ``example`` (token ids and token types)."""
        encoded = cast(dict, self.format.encode(self._context(example.context, self.n_ctx - self.max_new_tokens)))
        return {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"]}

    def scoring_request(self, example: Example) -> tuple[Any, Any] | None:
        """Return (prompt, reference tokens) for the first reference's NLL (None without one).

        The reference keeps at most n_ctx - 3 tokens and the context drops its oldest utterances
        until prompt + reference + eos fit the model's context.
        """
        from harness.generation import TokenPrompt

        if not example.references:
            return None
        target = self.tokenizer.encode(example.references[0], add_special_tokens=False)[: self.n_ctx - 3]
        encoded = cast(dict, self.format.encode(self._context(example.context, self.n_ctx - len(target) - 1)))
        prompt = TokenPrompt(encoded["input_ids"], token_type_ids=encoded["token_type_ids"])
        return prompt, TokenPrompt(target, token_type_ids=[self.format.sp2] * len(target))

    def generate(self, examples: Sequence[Example]) -> list[str]:
        """Return one decoded reply per example (stops at eos or a speaker token)."""
        from harness.generation import TokenPrompt

        prompts = [TokenPrompt(**self.prompt(example)) for example in examples]
        return self.generator.generate(prompts, self.config)

    def reference_nll(self, examples: Sequence[Example]) -> list[tuple[float, int] | None]:
        """Return (summed NLL in nats, token count) of each example's first reference + eos."""
        requests = [self.scoring_request(example) for example in examples]
        values = iter(self.generator.loglikelihood([r for r in requests if r is not None], add_eos=True))
        return [next(values) if r is not None else None for r in requests]

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return greedy (or seeded nucleus-sampled) replies with reference NLL for perplexity."""
        texts, scores = self.generate(examples), self.reference_nll(examples)
        return [Response(example_id=example.id, text=text, ref_nll=None if nll is None else float(nll[0]),
                         ref_tokens=None if nll is None else int(nll[1]))
                for example, text, nll in zip(examples, texts, scores)]

    def info(self) -> dict[str, Any]:
        """Return the identity of this system's outputs, including how the checkpoint was trained."""
        info = super().info()
        meta = Path(str(self.options["model"])) / "dialbench_training.json"
        if meta.is_file():
            import json

            trained = json.loads(meta.read_text(encoding="utf-8"))
            info["training"] = {key: trained.get(key) for key in ("system", "preset", "max_steps", "data")}
        info.update({"fingerprint": self.generator.fingerprint, "generation": self.config.key(),
                     "cache": str(self.cache.path) if self.cache else None,
                     "engine_stats": dict(self.generator.stats)})
        if self.generator.loaded_info:
            info["model"] = self.generator.loaded_info
        return info

    def close(self) -> None:
        """Close the cache connection (the model stays memoised by harness.checkpoints for the next task)."""
        if self.cache is not None:
            self.cache.close()
