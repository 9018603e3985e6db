"""One batch through the model: generation (with near-tie re-checks) and scoring of planned batches.

Called by ``harness.generation.Generator`` for the requests of one planned batch that are not cached.
Decoder-only models with a plain KV cache take the prefix-sharing path of ``harness.generation.prefix`` (greedy
and sampling); beam search, encoder-decoder models and single rows go through transformers'
``generate`` with left padding (right padding for encoder-decoders, whose encoder is bidirectional)
and an attention mask, from which ``generate`` derives position ids. Single rows are the reference
computation: a batched greedy row whose best and second-best tokens were ever closer than the
engine's tie margin is regenerated alone.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Sequence

import torch

from harness.generation.decoding import RowControl, Sampling, StopStrings, as_processor, row_seed
from harness.errors import UserError
from harness.generation.prefix import count_work, forward_parameters

if TYPE_CHECKING:
    from harness.generation import GenerationConfig, Generator


def encode_request(gen: "Generator", request: Any, kind: str, add_eos: bool) -> Any:
    """Return token ids of a request: a prompt's ids, or (context ids, continuation ids) for scoring."""
    if kind == "generate":
        return gen.encode(request)
    prompt, continuation = request
    if gen.plain_chat(prompt):
        continuation = " " + continuation  # "Assistant:" then " reply", as the model would write it
    context = gen.encode(prompt)
    target = list(gen.tokenizer(continuation, add_special_tokens=False)["input_ids"])
    eos = gen.tokenizer.eos_token_id
    if add_eos and eos is not None:
        target.append(int(eos))
    if not context:  # the first token needs something to be predicted from
        start = gen.tokenizer.bos_token_id if gen.tokenizer.bos_token_id is not None else eos
        context = [int(start if start is not None else 0)]
    return context, target


def _padded(rows: Sequence[Sequence[int]], pad: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids, mask = [], []
    for row in rows:
        fill = [pad] * (width - len(row))
        ids.append(fill + list(row) if left else list(row) + fill)
        ones, zeros = [1] * len(row), [0] * (width - len(row))
        mask.append(zeros + ones if left else ones + zeros)
    return torch.tensor(ids), torch.tensor(mask)


def generate_rows(gen: "Generator", rows: list[list[int]], keys: list[str], cfg: "GenerationConfig") -> list[str]:
    """Return the texts generated for ``rows`` (token ids), re-running near-tie rows alone."""
    from harness.generation.prefix import soft_prompted, supports_prefix_cache

    limit = gen.context_limit()
    if limit and not gen.seq2seq:
        room = limit - cfg.max_new_tokens
        if room < 1:
            raise UserError(f"max_new_tokens {cfg.max_new_tokens} leaves no room for a prompt in the model's "
                            f"{limit}-token context")
        gen.stats["truncated_prompts"] += sum(len(r) > room for r in rows)
        rows = [r[-room:] for r in rows]
    if len(rows) > 1 and soft_prompted(gen.model):  # virtual tokens go before any padding: one row at a time
        return [_generate_once(gen, [row], [key], cfg)[0][0] for row, key in zip(rows, keys)]
    if len(rows) > 1 and cfg.num_beams == 1 and supports_prefix_cache(gen):
        order = sorted(range(len(rows)), key=lambda i: rows[i])  # shared prefixes become neighbours
        texts_sorted, margins_sorted = _loop_batch(gen, [rows[i] for i in order], [keys[i] for i in order], cfg)
        texts, margins = [""] * len(rows), [0.0] * len(rows)
        for position, i in enumerate(order):
            texts[i], margins[i] = texts_sorted[position], margins_sorted[position]
    else:
        texts, margins = _generate_once(gen, rows, keys, cfg)
    if len(rows) > 1 and not cfg.do_sample and cfg.num_beams == 1 and gen.tie_margin > 0:
        for i, margin in enumerate(margins):
            if margin < gen.tie_margin:
                gen.stats["near_ties"] += 1
                texts[i] = _generate_once(gen, [rows[i]], [keys[i]], cfg)[0][0]
    return texts


def _control(gen: "Generator", pad_lengths: list[int], keys: list[str], cfg: "GenerationConfig", *,
             record: bool, generated_from: int | None = None) -> RowControl:
    seeds = None
    if cfg.do_sample:
        seeds = [row_seed(k) for k in keys] if cfg.seed is not None else [random.getrandbits(63) for _ in keys]
    return RowControl(pad_lengths, rows_per_prompt=cfg.num_beams, repetition_penalty=cfg.repetition_penalty,
                      sampling=Sampling(cfg.temperature, cfg.top_k, cfg.top_p) if cfg.do_sample else None,
                      seeds=seeds, record_margins=record and not cfg.do_sample and cfg.num_beams == 1,
                      end_ids=[*gen.eos_ids(), gen.pad_id()], generated_from=generated_from)


def _finish(gen: "Generator", ids: list[int], cfg: "GenerationConfig") -> str:
    text = gen.tokenizer.decode(ids, skip_special_tokens=True)
    for stop in cfg.stop:
        text = text.split(stop, 1)[0]
    return text.strip()


def _loop_batch(gen: "Generator", rows: list[list[int]], keys: list[str],
                cfg: "GenerationConfig") -> tuple[list[str], list[float]]:
    """Generate with prefix-sharing prefill and finished-row pruning (``harness.generation.prefix``)."""
    from harness.generation.prefix import decode_loop

    width = max(len(r) for r in rows)
    control = _control(gen, [width - len(r) for r in rows], keys, cfg, record=True)
    generated = decode_loop(gen, rows, control, cfg, StopStrings(gen.tokenizer, cfg.stop))
    gen.stats["prompt_tokens"] += sum(len(r) for r in rows)
    return [_finish(gen, ids, cfg) for ids in generated], control.margins


def _generate_once(gen: "Generator", rows: list[list[int]], keys: list[str],
                   cfg: "GenerationConfig") -> tuple[list[str], list[float]]:
    """Generate with transformers' ``generate`` (one row, beam search, encoder-decoder models)."""
    from transformers import GenerationConfig as HFGenerationConfig

    model = gen.model
    pad, eos = gen.pad_id(), gen.eos_ids()
    causal = not gen.seq2seq
    input_ids, mask = _padded(rows, pad, left=causal)
    width = input_ids.shape[1]
    generated_from = width if causal else 1  # encoder-decoder outputs start with the decoder start token
    control = _control(gen, [width - len(r) if causal else 0 for r in rows], keys, cfg,
                       record=len(rows) > 1, generated_from=generated_from)
    # Everything that shapes decoding is set here, so a model's shipped generation_config.json
    # (no_repeat_ngram_size, min_length, sampling defaults...) cannot silently change our outputs.
    hf_config = HFGenerationConfig(
        max_new_tokens=cfg.max_new_tokens, do_sample=False, num_beams=cfg.num_beams, num_return_sequences=1,
        pad_token_id=pad, eos_token_id=eos or None, use_cache=True, repetition_penalty=1.0,
        no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0, min_new_tokens=0,
        length_penalty=1.0, temperature=1.0, top_k=50, top_p=1.0,
    )
    extra = {"stopping_criteria": StopStrings(gen.tokenizer, cfg.stop).criteria(generated_from)} if cfg.stop else {}
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                             generation_config=hf_config, logits_processor=as_processor(control), **extra)
    steps = out.shape[1] - generated_from
    rows_run = len(rows) * cfg.num_beams
    count_work(gen.stats, rows_run * (width + steps), rows_run * (1 + steps),
               rows_run * (width * (width + 1) // 2 + steps * width + steps * (steps + 1) // 2))
    ends = set(eos) | {pad}
    texts = []
    for row, ids in zip(rows, out[:, generated_from:].tolist()):
        cut = next((j for j, t in enumerate(ids) if t in ends), None)
        texts.append(_finish(gen, ids if cut is None else ids[:cut], cfg))
        gen.stats["new_tokens"] += len(ids) if cut is None else cut + 1
        gen.stats["prompt_tokens"] += len(row)
    return texts, control.margins


def score_rows(gen: "Generator", rows: list[tuple[list[int], list[int]]]) -> list[list[float]]:
    """Return [summed NLL (nats), token count] of each (context, continuation) row."""
    from harness.generation.prefix import chain_forward, soft_prompted, supports_prefix_cache

    model = gen.model
    if gen.seq2seq:
        return _score_seq2seq(gen, rows, next(model.parameters()).device)
    limit = gen.context_limit()
    fitted = []
    for context, target in rows:
        if limit and len(context) + len(target) > limit:
            target = target[: limit - 1]
            context = context[-(limit - len(target)):]
            gen.stats["truncated_prompts"] += 1
        fitted.append((context, target))
    gen.stats["scored_tokens"] += sum(len(c) + len(t) for c, t in fitted)
    if supports_prefix_cache(gen):
        order = sorted(range(len(fitted)), key=lambda i: fitted[i][0] + fitted[i][1])
        logits, _, _ = chain_forward(model, [fitted[i][0] + fitted[i][1] for i in order],
                                     [len(fitted[i][1]) + 1 for i in order], keep_cache=False, stats=gen.stats)
        results: list[list[float]] = [[0.0, 0]] * len(fitted)
        for position, i in enumerate(order):
            results[i] = _summed_nll(torch.log_softmax(logits[position], dim=-1), fitted[i][1], len(fitted[i][1]) + 1)
        return results
    if soft_prompted(model):  # virtual tokens go before any padding: one row at a time
        return [_score_padded(gen, [row])[0] for row in fitted]
    return _score_padded(gen, fitted)


def _score_padded(gen: "Generator", rows: list[tuple[list[int], list[int]]]) -> list[list[float]]:
    """Score rows in one left-padded forward, position ids counted from each row's first token."""
    model = gen.model
    device = next(model.parameters()).device
    keep = max(len(t) for _, t in rows) + 1
    input_ids, mask = _padded([c + t for c, t in rows], gen.pad_id(), left=True)
    accepted = forward_parameters(model)
    kwargs: dict[str, Any] = {"attention_mask": mask.to(device)}
    if "position_ids" in accepted and len(rows) > 1:
        kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(device)
    if "logits_to_keep" in accepted:
        kwargs["logits_to_keep"] = keep
    width = input_ids.shape[1]
    count_work(gen.stats, len(rows) * width, len(rows) * keep, len(rows) * width * (width + 1) // 2)
    with torch.inference_mode():
        logits = model(input_ids=input_ids.to(device), **kwargs).logits[:, -keep:]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
    return [_summed_nll(logprobs[row], target, keep) for row, (_, target) in enumerate(rows)]


def _summed_nll(logprobs: torch.Tensor, target: list[int], keep: int) -> list[float]:
    """Return [NLL, count] of ``target`` from log-probs of a row's last ``keep`` positions."""
    if not target:
        return [0.0, 0]
    n = len(target)
    picked = logprobs[keep - 1 - n : keep - 1].gather(-1, torch.tensor(target, device=logprobs.device)[:, None])
    return [-float(picked.double().sum()), n]


def _score_seq2seq(gen: "Generator", rows: list[tuple[list[int], list[int]]], device: Any) -> list[list[float]]:
    input_ids, mask = _padded([c for c, _ in rows], gen.pad_id(), left=False)
    targets = [t for _, t in rows]
    width = max(1, max(len(t) for t in targets))
    labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets])
    with torch.inference_mode():
        logits = gen.model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                           labels=labels.to(device)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
    results = []
    for row, target in enumerate(targets):
        picked = logprobs[row, : len(target)].gather(-1, torch.tensor(target, device=device)[:, None])
        results.append([-float(picked.double().sum()), len(target)])
    return results
