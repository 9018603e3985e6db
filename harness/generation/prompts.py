"""Prompt kinds as rows of positions: token ids, optional token types, an optional soft prefix.

Every prompt kind (text, chat messages, ``TokenPrompt``) becomes a ``Row`` before planning, so
sorting, prefix sharing, padding and scoring treat them alike. A row's ``signature`` lists its
positions as comparable tuples (a prefix's virtual positions, then (id, type) pairs): rows sort by
it and share a computed prefix only where signatures agree, so rows with different token types or
soft prefixes never reuse each other's keys/values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from harness.errors import UserError
from harness.generation.config import Continuation, Prompt, TokenPrompt, plain_chat

if TYPE_CHECKING:
    from harness.generation.state import ModelState, PrefixTable

NO_TYPE = -1
"""Signature stand-in for the token type of an untyped row."""


@dataclass(frozen=True)
class Row:
    """A prompt as the model sees it: ``virtual`` prefix positions, then ``ids`` (with ``types``)."""

    ids: tuple[int, ...]
    types: tuple[int, ...] | None = None
    prefix: str | None = None
    virtual: int = 0
    extra: Any = None

    def __len__(self) -> int:
        return self.virtual + len(self.ids)

    def signature(self) -> list[tuple[Any, ...]]:
        """Return the row's positions as sortable tuples (equal tuples = identical model input)."""
        head = [(0, self.prefix, j) for j in range(self.virtual)]
        types = self.types if self.types is not None else (NO_TYPE,) * len(self.ids)
        return head + [(1, i, t) for i, t in zip(self.ids, types)]

    @property
    def last_type(self) -> int | None:
        """The token type generated and continuation tokens take (the prompt's last one)."""
        if self.types is None:
            return None
        return self.types[-1] if self.types else 0

    def keep_last(self, tokens: int) -> "Row":
        """Return the row with only its last ``tokens`` ids (the prefix always stays)."""
        if tokens >= len(self.ids):
            return self
        return self.window(len(self.ids) - max(tokens, 0), len(self.ids))

    def window(self, start: int, end: int) -> "Row":
        """Return the row with only ``ids[start:end]`` (and their types; the prefix always stays)."""
        return Row(self.ids[start:end], None if self.types is None else self.types[start:end], self.prefix,
                   self.virtual, self.extra)

    def extended(self, ids: Sequence[int], types: Sequence[int] | None = None) -> "Row":
        """Return the row followed by ``ids`` (typed with ``types``, else the row's last type)."""
        new_types = None
        if self.types is not None:
            new_types = self.types + tuple(types if types is not None else [self.last_type] * len(ids))
        return Row(self.ids + tuple(ids), new_types, self.prefix, self.virtual, self.extra)


def prompt_json(prompt: Prompt | Continuation, prefixes: PrefixTable) -> Any:
    """Return a prompt as plain JSON for cache keys (text and chat prompts keep their old keys)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, TokenPrompt):
        data: dict[str, Any] = {"tokens": list(prompt.input_ids)}
        if prompt.token_type_ids is not None:
            data["types"] = list(prompt.token_type_ids)
        if prompt.prefix is not None:
            data["prefix"] = {"name": prompt.prefix, "sha256": prefixes.digest(prompt.prefix)}
        if prompt.encoder_extra is not None:
            data["encoder_extra"] = prompt.encoder_extra
        return data
    return [dict(m) for m in prompt]


def uses_plain_chat(state: "ModelState", prompt: Prompt) -> bool:
    """Return True when chat messages must be rendered by ``plain_chat`` (no usable chat template)."""
    return not isinstance(prompt, (str, TokenPrompt)) and (
        state.seq2seq or not getattr(state.tokenizer, "chat_template", None))


def render(state: "ModelState", prompt: str | Sequence[Mapping[str, str]]) -> tuple[str, bool]:
    """Return (text, add_special_tokens) for a text or chat prompt; chat goes through the chat template."""
    if isinstance(prompt, str):
        return prompt, True
    messages = [dict(m) for m in prompt]
    if uses_plain_chat(state, prompt):
        return plain_chat(messages), True
    return state.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), False


def encode_prompt(state: "ModelState", prompt: Prompt) -> Row:
    """Return the row of a prompt (text and chat are tokenized; token prompts are checked)."""
    if isinstance(prompt, TokenPrompt):
        virtual = 0
        if prompt.prefix is not None:
            if state.seq2seq:
                raise UserError("token prompt: soft prefixes need a decoder-only model")
            table = state.prefixes.table(prompt.prefix)
            hidden = state.model.get_input_embeddings().weight.shape[1]
            if table.shape[1] != hidden:
                raise UserError(f"prefix '{prompt.prefix}': width {table.shape[1]} does not match the model's "
                                f"embedding width {hidden}")
            virtual = table.shape[0]
        return Row(prompt.input_ids, prompt.token_type_ids, prompt.prefix, virtual, prompt.encoder_extra)
    text, special = render(state, prompt)
    return Row(tuple(state.tokenizer(text, add_special_tokens=special)["input_ids"]))


def encode_pair(state: "ModelState", prompt: Prompt, continuation: Continuation,
                add_eos: bool) -> tuple[Row, Row, list[int]]:
    """Return (context row, context + continuation row, continuation ids) of a scoring request.

    The context row is never empty: a lone bos (else eos) stands in so the first token has a prediction.
    """
    context = encode_prompt(state, prompt)
    types: Sequence[int] | None = None
    if isinstance(continuation, TokenPrompt):
        target, types = list(continuation.input_ids), continuation.token_type_ids
    else:
        if uses_plain_chat(state, prompt):
            continuation = " " + continuation  # "Assistant:" then " reply", as the model would write it
        target = list(state.tokenizer(continuation, add_special_tokens=False)["input_ids"])
    eos = state.tokenizer.eos_token_id
    if add_eos and eos is not None:
        target.append(int(eos))
        types = None if types is None else [*types, context.last_type or 0]
    if not len(context):  # the first token needs something to be predicted from
        start = state.tokenizer.bos_token_id if state.tokenizer.bos_token_id is not None else eos
        context = Row((int(start if start is not None else 0),), None if context.types is None else (0,))
    return context, context.extended(target, types), target


def check_uniform(rows: Sequence[Row]) -> None:
    """Refuse a call that mixes typed and untyped rows: one forward cannot express both."""
    typed = {row.types is not None for row in rows}
    if len(typed) > 1:
        raise UserError("token prompts with and without token_type_ids cannot be mixed in one call")


def model_inputs(state: "ModelState", rows: Sequence[Row], *, left: bool) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Return padded model inputs of whole rows and each row's count of non-token positions.

    Keys: ``input_ids`` (virtual positions hold the pad id), ``attention_mask``, ``token_type_ids``
    for typed rows (0 on padding and virtual positions, as peft does), ``inputs_embeds`` when a row
    has a prefix. The counts (padding + virtual positions) tell penalties which columns are no tokens.
    """
    width = max(len(r) for r in rows)
    pad = state.pad_id
    ids, mask, types, skipped = [], [], [], []
    for row in rows:
        fill = width - len(row)
        body = [pad] * row.virtual + list(row.ids)
        ids.append([pad] * fill + body if left else body + [pad] * fill)
        mask.append([0] * fill + [1] * len(row) if left else [1] * len(row) + [0] * fill)
        row_types = [0] * row.virtual + list(row.types or ())
        types.append([0] * fill + row_types if left else row_types + [0] * fill)
        skipped.append(fill + row.virtual if left else row.virtual)
    inputs = {"input_ids": torch.tensor(ids, device=state.device), "attention_mask": torch.tensor(mask, device=state.device)}
    if rows[0].types is not None:
        inputs["token_type_ids"] = torch.tensor(types, device=state.device)
    if any(r.virtual for r in rows):
        inputs["inputs_embeds"] = with_prefixes(state, inputs["input_ids"], rows,
                                                [width - len(r) if left else 0 for r in rows])
    return inputs, skipped


def with_prefixes(state: "ModelState", ids: torch.Tensor, rows: Sequence[Row], starts: Sequence[int],
                  offsets: Sequence[int] | None = None) -> torch.Tensor:
    """Return the embeddings of ``ids`` with row b's prefix rows written from column ``starts[b]``.

    ``offsets[b]`` is the first prefix position the columns hold (a chunk that resumes inside the prefix).
    """
    with torch.inference_mode():
        embeds = state.embed(ids)
        for b, row in enumerate(rows):
            first = offsets[b] if offsets is not None else 0
            if row.virtual > first:
                table = state.prefixes.table(str(row.prefix))[first:]
                embeds[b, starts[b] : starts[b] + table.shape[0]] = table.to(embeds)
    return embeds
