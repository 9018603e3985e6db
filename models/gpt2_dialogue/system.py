"""``gpt2_dialogue``: GPT-2 fine-tuned on multi-turn dialogue with speaker tokens (systems.md §4).

The input format (``format.py``) is shared with the training recipe (``recipe.py``): ``<bos>`` + ``[<sp1>|<sp2>] + utterance`` per turn + ``<sp2>`` (+ target +
eos when training); token-type ids repeat each utterance's speaker token (``<bos>`` takes the first
speaker's, the response and eos take ``<sp2>``); the loss covers only the target and eos.

Generation goes through ``model.generate`` rather than the shared text-prompt generator because the
model needs token-type ids: transformers extends ``token_type_ids`` (and explicit ``position_ids``)
for new tokens by repeating the last prompt value, and the prompt ends with ``<sp2>`` (type
``<sp2>``), so every generated token gets type ``<sp2>`` exactly as in the paper's inference loop.
Batches are left-padded with an attention mask and position ids that start at 0 on the first real
token, so a batched answer equals the unbatched one (tested).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, cast

from harness.errors import UserError
from harness.records import Example, Response, Turn
from harness.system import System
from models.gpt2_dialogue.format import MAX_TURNS, SILENCE, DialogueFormat
from training.collate import IGNORE_INDEX, PaddingCollator

def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in ("true", "false", "1", "0", "yes", "no"):
        raise UserError(f"system 'gpt2_dialogue': expected true or false, got '{value}'")
    return word in ("true", "1", "yes")


class GPT2DialogueSystem(System):
    """Answers with a GPT-2 checkpoint trained by ``dialbench train gpt2_dialogue``.

    Options: ``model`` (checkpoint directory, required), ``batch_size`` (auto = 16), ``device`` (auto),
    ``dtype`` (auto: float32 on CPU, bfloat16 on a GPU that has it), ``max_new_tokens`` (64),
    ``do_sample`` (false: greedy, for reproducible scored runs; the paper samples), ``top_p`` (0.8,
    the paper's nucleus; no top-k, no temperature), ``seed`` (0), ``max_turns`` (5: the prompt keeps
    the last max_turns-1 context utterances). ``ref_nll`` is the summed NLL of the first reference
    plus eos under the same prompt, ``ref_tokens`` its token count (reference tokens + 1).
    """

    name = "gpt2_dialogue"
    description = "GPT-2 fine-tuned on multi-turn dialogue with speaker tokens (devjwsong)"
    option_names = ("model", "batch_size", "device", "dtype", "max_new_tokens", "do_sample", "top_p", "seed",
                    "max_turns")

    def __init__(self, task: Any, **options: Any) -> None:
        super().__init__(task, **options)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = options.get("model")
        if not model_dir:
            raise UserError("system 'gpt2_dialogue' needs option model=DIR (a checkpoint from `dialbench train gpt2_dialogue`)")
        if not Path(model_dir).is_dir():
            raise UserError(f"{model_dir}: checkpoint directory not found (system 'gpt2_dialogue' option model)")
        batch_size = options.get("batch_size", "auto")
        self.batch_size = 16 if batch_size in (None, "auto") else int(batch_size)
        self.max_new_tokens = int(options.get("max_new_tokens", 64))
        self.do_sample = _flag(options.get("do_sample", False))
        self.top_p = float(options.get("top_p", 0.8))
        self.seed = int(options.get("seed", 0))
        self.max_turns = int(options.get("max_turns", MAX_TURNS))
        device = str(options.get("device", "auto"))
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device)
        dtype = str(options.get("dtype", "auto"))
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "float32"
        if dtype not in ("float32", "bfloat16", "float16"):
            raise UserError(f"system 'gpt2_dialogue' option dtype: '{dtype}' is not one of auto, float32, bfloat16, float16")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.format = DialogueFormat.of(self.tokenizer, where=str(model_dir))
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(self.device).eval()
        if self.model.config.model_type != "gpt2":
            raise UserError(f"{model_dir}: model type '{self.model.config.model_type}' is not gpt2 (token types need GPT-2)")
        self.n_ctx = int(self.model.config.n_positions)

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
        return cast(dict, self.format.encode(self._context(example.context, self.n_ctx - self.max_new_tokens)))

    def scoring_input(self, example: Example) -> dict[str, list[int]] | None:
        """Return prompt + first reference + eos, labelled on the reference and eos (None without one)."""
        if not example.references:
            return None
        target = self.tokenizer.encode(example.references[0], add_special_tokens=False)[: self.n_ctx - 3]
        context = self._context(example.context, self.n_ctx - len(target) - 1)
        return self.format.encode(context, target, max_length=self.n_ctx)

    # --- model calls ------------------------------------------------------------------------------
    def _left_padded(self, rows: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(row["input_ids"]) for row in rows)
        batch: dict[str, list[list[int]]] = {"input_ids": [], "token_type_ids": [], "attention_mask": [], "position_ids": []}
        for row in rows:
            pad = width - len(row["input_ids"])
            batch["input_ids"].append([self.format.eos] * pad + row["input_ids"])
            batch["token_type_ids"].append([self.format.sp2] * pad + row["token_type_ids"])
            batch["attention_mask"].append([0] * pad + [1] * len(row["input_ids"]))
            batch["position_ids"].append([0] * pad + list(range(len(row["input_ids"]))))
        return {key: torch.tensor(value, device=self.device) for key, value in batch.items()}

    def generate(self, examples: Sequence[Example]) -> list[str]:
        """Return one decoded reply per example (batched, left padded; stops at eos or a speaker token)."""
        import torch

        inputs = self._left_padded([self.prompt(example) for example in examples])
        stops = [self.format.eos, self.format.sp1, self.format.sp2, self.format.bos]
        sampling = {"do_sample": True, "top_p": self.top_p, "top_k": 0, "temperature": 1.0} if self.do_sample else {"do_sample": False}
        with torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, eos_token_id=stops,
                                         pad_token_id=self.format.eos, **sampling)
        new = output[:, inputs["input_ids"].shape[1]:].tolist()
        texts = []
        for ids in new:
            cut = next((i for i, token in enumerate(ids) if token in stops), len(ids))
            texts.append(self.tokenizer.decode(ids[:cut], skip_special_tokens=True).strip())
        return texts

    def reference_nll(self, examples: Sequence[Example]) -> list[tuple[float, int] | None]:
        """Return (summed NLL in nats, token count) of each example's first reference + eos."""
        import torch

        rows = [self.scoring_input(example) for example in examples]
        present = [row for row in rows if row is not None]
        if not present:
            return [None] * len(rows)
        batch = {key: value.to(self.device) for key, value in PaddingCollator(pad_id=self.format.eos)(present).items()}
        labels = batch.pop("labels")
        with torch.no_grad():
            logits = self.model(**batch).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        gold = labels[:, 1:]
        picked = logprobs.gather(-1, gold.clamp(min=0).unsqueeze(-1)).squeeze(-1) * (gold != IGNORE_INDEX)
        scores = iter(zip((-picked.sum(-1)).tolist(), (gold != IGNORE_INDEX).sum(-1).tolist()))
        return [next(scores) if row is not None else None for row in rows]

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return greedy (or nucleus-sampled) replies with reference NLL for perplexity."""
        import torch

        torch.manual_seed(self.seed)
        responses: list[Response] = []
        for start in range(0, len(examples), self.batch_size):
            batch = examples[start:start + self.batch_size]
            for example, text, nll in zip(batch, self.generate(batch), self.reference_nll(batch)):
                responses.append(Response(example_id=example.id, text=text,
                                          ref_nll=None if nll is None else float(nll[0]),
                                          ref_tokens=None if nll is None else int(nll[1])))
        return responses

    def info(self) -> dict[str, Any]:
        """Return the identity of this system's outputs, including how the checkpoint was trained."""
        info = super().info()
        meta = Path(str(self.options["model"])) / "dialbench_training.json"
        if meta.is_file():
            import json

            trained = json.loads(meta.read_text(encoding="utf-8"))
            info["training"] = {key: trained.get(key) for key in ("system", "preset", "max_steps", "data")}
        return info

    def close(self) -> None:
        """Drop the model so its memory can be reclaimed between runs."""
        self.model = None  # type: ignore[assignment]
