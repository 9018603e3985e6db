"""One batch through the model: generation (with near-tie re-checks) and scoring of planned batches.

Called by ``harness.generation.Generator`` with the model's ``ModelState`` and the rows (see
``harness.generation.prompts``) of one planned batch that are not cached. Decoder-only models with a
plain KV cache take the prefix-sharing path of ``harness.generation.prefix`` (greedy and sampling);
beam search, encoder-decoder models and single rows go through transformers' ``generate`` with left
padding (right padding for encoder-decoders, whose encoder is bidirectional) and an attention mask,
from which ``generate`` derives position ids. Single rows are the reference computation: a batched
greedy row whose best and second-best tokens were ever closer than the tie margin is regenerated alone.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Sequence

import torch

from harness.errors import UserError
from harness.generation.decoding import RowControl, Sampling, StopStrings, as_processor, row_seed
from harness.generation.capabilities import forward_parameters, soft_prompted
from harness.generation.prefix import chain_forward, count_work, decode_loop
from harness.generation.prompts import Row, model_inputs

if TYPE_CHECKING:
    from harness.generation.config import EncoderHook, GenerationConfig
    from harness.generation.state import ModelState


def end_ids(state: "ModelState", cfg: "GenerationConfig") -> list[int]:
    """Return the ids that end a reply: the model's eos ids plus the config's stop token ids."""
    return list(dict.fromkeys([*state.eos_ids, *cfg.stop_token_ids]))


def generate_rows(state: "ModelState", rows: list[Row], keys: list[str], cfg: "GenerationConfig",
                  hook: "EncoderHook | None" = None) -> list[str]:
    """Return the texts generated for ``rows``, re-running near-tie rows alone."""
    limit = state.context_limit
    if limit and not state.seq2seq:
        room = limit - cfg.max_new_tokens
        if room < 1 or any(r.virtual >= room for r in rows):
            raise UserError(f"max_new_tokens {cfg.max_new_tokens} leaves no room for a prompt in the model's "
                            f"{limit}-token context")
        state.stats["truncated_prompts"] += sum(len(r) > room for r in rows)
        rows = [r.keep_last(room - r.virtual) for r in rows]
    if len(rows) > 1 and soft_prompted(state.model):  # virtual tokens go before any padding: one row at a time
        return [_generate_once(state, [row], [key], cfg, hook)[0][0] for row, key in zip(rows, keys)]
    if len(rows) > 1 and cfg.num_beams == 1 and state.shares_prefixes:
        order = sorted(range(len(rows)), key=lambda i: rows[i].signature())  # shared prefixes become neighbours
        texts_sorted, margins_sorted = _loop_batch(state, [rows[i] for i in order], [keys[i] for i in order], cfg)
        texts, margins = [""] * len(rows), [0.0] * len(rows)
        for position, i in enumerate(order):
            texts[i], margins[i] = texts_sorted[position], margins_sorted[position]
    else:
        texts, margins = _generate_once(state, rows, keys, cfg, hook)
    if len(rows) > 1 and not cfg.do_sample and cfg.num_beams == 1 and state.tie_margin > 0:
        for i, margin in enumerate(margins):
            if margin < state.tie_margin:
                state.stats["near_ties"] += 1
                texts[i] = _generate_once(state, [rows[i]], [keys[i]], cfg, hook)[0][0]
    return texts


def _control(state: "ModelState", skipped: list[int], keys: list[str], cfg: "GenerationConfig", *,
             record: bool, generated_from: int | None = None) -> RowControl:
    seeds = None
    if cfg.do_sample:
        seeds = [row_seed(k) for k in keys] if cfg.seed is not None else [random.getrandbits(63) for _ in keys]
    return RowControl(skipped, rows_per_prompt=cfg.num_beams, repetition_penalty=cfg.repetition_penalty,
                      no_repeat_ngram_size=cfg.no_repeat_ngram_size,
                      sampling=Sampling(cfg.temperature, cfg.top_k, cfg.top_p) if cfg.do_sample else None,
                      seeds=seeds, record_margins=record and not cfg.do_sample and cfg.num_beams == 1,
                      end_ids=[*end_ids(state, cfg), state.pad_id], generated_from=generated_from)


def _finish(state: "ModelState", ids: list[int], cfg: "GenerationConfig") -> str:
    text = state.tokenizer.decode(ids, skip_special_tokens=True)
    for stop in cfg.stop:
        text = text.split(stop, 1)[0]
    return text.strip()


def _loop_batch(state: "ModelState", rows: list[Row], keys: list[str],
                cfg: "GenerationConfig") -> tuple[list[str], list[float]]:
    """Generate with prefix-sharing prefill and finished-row pruning (``harness.generation.prefix``)."""
    width = max(len(r) for r in rows)
    control = _control(state, [width - len(r.ids) for r in rows], keys, cfg, record=True)
    generated = decode_loop(state, rows, control, cfg, StopStrings(state.tokenizer, cfg.stop), end_ids(state, cfg))
    state.stats["prompt_tokens"] += sum(len(r) for r in rows)
    return [_finish(state, ids, cfg) for ids in generated], control.margins


def _encoder_inputs(state: "ModelState", rows: Sequence[Row], hook: "EncoderHook | None") -> dict[str, Any]:
    """Return the encoder-side inputs of right-padded rows (through the hook when there is one)."""
    inputs, _ = model_inputs(state, rows, left=False)
    if hook is None:
        if any(r.extra is not None for r in rows):
            raise UserError("token prompts carry encoder_extra but the call has no encoder_hook")
        return inputs
    with torch.inference_mode():
        encoded, mask = hook.encode(state.model, inputs["input_ids"], inputs["attention_mask"], [r.extra for r in rows])
    return {"encoder_outputs": encoded, "attention_mask": mask}


def _generate_once(state: "ModelState", rows: list[Row], keys: list[str], cfg: "GenerationConfig",
                   hook: "EncoderHook | None" = None) -> tuple[list[str], list[float]]:
    """Generate with transformers' ``generate`` (one row, beam search, encoder-decoder models)."""
    from transformers import GenerationConfig as HFGenerationConfig

    pad, eos = state.pad_id, end_ids(state, cfg)
    causal = not state.seq2seq
    if causal:
        inputs, skipped = model_inputs(state, rows, left=True)
        width = generated_from = inputs["input_ids"].shape[1]
    else:
        inputs, skipped = _encoder_inputs(state, rows, hook), [0] * len(rows)
        width, generated_from = max(len(r) for r in rows), 1  # outputs start with the decoder start token
    control = _control(state, skipped, keys, cfg, record=len(rows) > 1, generated_from=generated_from)
    # Everything that shapes decoding is set here, so a model's shipped generation_config.json
    # (no_repeat_ngram_size, min_length, sampling defaults...) cannot silently change our outputs.
    # Repetition penalty and n-gram blocking are applied per row by ``control``, not by transformers.
    hf_config = HFGenerationConfig(
        max_new_tokens=cfg.max_new_tokens, do_sample=False, num_beams=cfg.num_beams, num_return_sequences=1,
        pad_token_id=pad, eos_token_id=eos or None, use_cache=True, repetition_penalty=1.0,
        no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0, min_new_tokens=0,
        length_penalty=cfg.length_penalty, temperature=1.0, top_k=50, top_p=1.0,
    )
    from transformers import StoppingCriteriaList

    criteria = StoppingCriteriaList([_step_reporter(state, len(rows), generated_from, cfg.max_new_tokens)])
    if cfg.stop:
        criteria.extend(StopStrings(state.tokenizer, cfg.stop).criteria(generated_from))
    with torch.inference_mode():
        out = state.model.generate(**inputs, generation_config=hf_config, logits_processor=as_processor(control),
                                   stopping_criteria=criteria)
    steps = out.shape[1] - generated_from
    rows_run = len(rows) * cfg.num_beams
    count_work(state.stats, rows_run * (width + steps), rows_run * (1 + steps),
               rows_run * (width * (width + 1) // 2 + steps * width + steps * (steps + 1) // 2))
    ends = set(eos) | {pad}
    texts = []
    for row, ids in zip(rows, out[:, generated_from:].tolist()):
        cut = next((j for j, t in enumerate(ids) if t in ends), None)
        texts.append(_finish(state, ids if cut is None else ids[:cut], cfg))
        state.stats["new_tokens"] += len(ids) if cut is None else cut + 1
        state.stats["prompt_tokens"] += len(row)
    return texts, control.margins


def _step_reporter(state: "ModelState", rows: int, generated_from: int, max_new_tokens: int) -> Any:
    """Return a stopping criterion that reports each ``generate`` step to the progress callback and stops nothing."""
    from transformers import StoppingCriteria

    class _StepReporter(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            state.report_step(0, rows, input_ids.shape[1] - generated_from, max_new_tokens)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return _StepReporter()


def score_rows(state: "ModelState", requests: list[tuple[Row, Row, list[int]]],
               hook: "EncoderHook | None" = None) -> list[list[float]]:
    """Return [summed NLL (nats), token count] of each (context, context + continuation, continuation ids).

    Decoder-only models read the joined row; encoder-decoders encode the context and score the
    continuation as the decoder's target.
    """
    if state.seq2seq:
        return _score_seq2seq(state, [(context, target) for context, _, target in requests], hook)
    limit = state.context_limit
    fitted = []
    for _, row, target in requests:
        if limit and len(row) > limit:  # keep the continuation's start and the context's end
            context_ids = len(row.ids) - len(target)
            target = target[: limit - 1 - row.virtual]
            kept = limit - row.virtual - len(target)
            row = row.window(context_ids - kept, context_ids + len(target))
            state.stats["truncated_prompts"] += 1
        fitted.append((row, target))
    state.stats["scored_tokens"] += sum(len(r) for r, _ in fitted)
    if state.shares_prefixes:
        order = sorted(range(len(fitted)), key=lambda i: fitted[i][0].signature())
        logits, _, _ = chain_forward(state, [fitted[i][0] for i in order], [len(fitted[i][1]) + 1 for i in order],
                                     keep_cache=False)
        results: list[list[float]] = [[0.0, 0]] * len(fitted)
        for position, i in enumerate(order):
            results[i] = _summed_nll(torch.log_softmax(logits[position], dim=-1), fitted[i][1], len(fitted[i][1]) + 1)
        return results
    if soft_prompted(state.model):  # virtual tokens go before any padding: one row at a time
        return [_score_padded(state, [row])[0] for row in fitted]
    return _score_padded(state, fitted)


def _score_padded(state: "ModelState", rows: list[tuple[Row, list[int]]]) -> list[list[float]]:
    """Score rows in one left-padded forward, position ids counted from each row's first position."""
    keep = max(len(t) for _, t in rows) + 1
    inputs, _ = model_inputs(state, [r for r, _ in rows], left=True)
    mask = inputs["attention_mask"]
    if "inputs_embeds" in inputs:
        inputs.pop("input_ids")
    accepted = forward_parameters(state.model)
    if "position_ids" in accepted and len(rows) > 1:
        inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    if "logits_to_keep" in accepted:
        inputs["logits_to_keep"] = keep
    width = mask.shape[1]
    count_work(state.stats, len(rows) * width, len(rows) * keep, len(rows) * width * (width + 1) // 2)
    with torch.inference_mode():
        logits = state.model(**inputs).logits[:, -keep:]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
    return [_summed_nll(logprobs[row], target, keep) for row, (_, target) in enumerate(rows)]


def _summed_nll(logprobs: torch.Tensor, target: list[int], keep: int) -> list[float]:
    """Return [NLL, count] of ``target`` from log-probs of a row's last ``keep`` positions."""
    if not target:
        return [0.0, 0]
    n = len(target)
    picked = logprobs[keep - 1 - n : keep - 1].gather(-1, torch.tensor(target, device=logprobs.device)[:, None])
    return [-float(picked.double().sum()), n]


def _score_seq2seq(state: "ModelState", rows: list[tuple[Row, list[int]]],
                   hook: "EncoderHook | None") -> list[list[float]]:
    inputs = _encoder_inputs(state, [r for r, _ in rows], hook)
    targets = [t for _, t in rows]
    width = max(1, max(len(t) for t in targets))
    labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets], device=state.device)
    with torch.inference_mode():
        logits = state.model(**inputs, labels=labels).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
    results = []
    for row, target in enumerate(targets):
        picked = logprobs[row, : len(target)].gather(-1, torch.tensor(target, device=state.device)[:, None])
        results.append([-float(picked.double().sum()), len(target)])
    return results
