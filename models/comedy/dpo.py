"""Stage 2, COMEDY's DPO: summed log-probs from the first differing token, plus 0.1 x SFT on the chosen.

Per pair, both sequences are tokenised whole (wrapped prompt + reply + ``</s>``); ``start`` is the
first index where chosen and rejected differ, so the prompt and any shared reply prefix add nothing.
log p(seq) = sum over t >= start of log softmax(logits[t-1])[x_t]. Loss (systems.md §1.3):
-log sigmoid(beta [(log pi_c - log ref_c) - (log pi_r - log ref_r)]) + w x (-mean log pi_c), with
beta 0.01 and w 0.1 in the paper, the reference frozen. ``pad_loss=released`` reproduces the
released mask (token != pad with pad = eos): the reply's final eos is then left out.

Why not TRL's DPOTrainer: it tokenises prompt and completion itself and scores every completion
token, so it cannot start the sums at the first token where chosen and rejected differ; this module
is a ``transformers.Trainer`` subclass with that loss, and reuses TRL only to put the frozen
reference under DeepSpeed (``trl.models.utils.prepare_deepspeed``, ZeRO-3 shards it like the policy).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from harness.errors import DataError
from harness.records import BOT, Dialogue

PAIR_KEYS = ("chosen_ids", "rejected_ids", "start")


def prompt_text(dialogue: Dialogue) -> str:
    """Return a DPO row's prompt in the wrapper: its segments, then the open ``<s>[AI]\\n``."""
    from models.comedy.sft import render

    segments = [("AI" if t.speaker == BOT else "Human", t.text) for t in dialogue.turns[:-1]]
    return render(segments) + "\n<s>[AI]\n"


def first_difference(chosen: Sequence[int], rejected: Sequence[int]) -> int:
    """Return the first index where the two id lists differ (the shorter length if one is a prefix)."""
    for index, (a, b) in enumerate(zip(chosen, rejected)):
        if a != b:
            return index
    return min(len(chosen), len(rejected))


def encode_pair(tokenizer: Any, dialogue: Dialogue, max_len: int) -> dict[str, Any] | None:
    """Return a pair's features (None when longer than ``max_len``); identical replies are a DataError."""
    chosen, rejected = dialogue.turns[-1].text.strip(), str(dialogue.meta["rejected"]).strip()
    path = dialogue.source.path if dialogue.source else "<dpo>"
    line = dialogue.source.line if dialogue.source else None
    if chosen == rejected:
        raise DataError(path, line, "rejected", "identical to the chosen reply (a preference pair needs two different replies)")
    prompt = prompt_text(dialogue)
    chosen_ids = list(tokenizer(prompt + chosen + "</s>", add_special_tokens=False)["input_ids"])
    rejected_ids = list(tokenizer(prompt + rejected + "</s>", add_special_tokens=False)["input_ids"])
    if chosen_ids == rejected_ids:
        raise DataError(path, line, "rejected", "tokenises exactly like the chosen reply")
    if max(len(chosen_ids), len(rejected_ids)) > max_len:
        return None
    return {"chosen_ids": chosen_ids, "rejected_ids": rejected_ids, "start": first_difference(chosen_ids, rejected_ids)}


@dataclass
class PairCollator:
    """Stack a batch's chosen rows, then its rejected rows, right-padded to one width (one forward pass)."""

    pad_id: int

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [list(r["chosen_ids"]) for r in batch] + [list(r["rejected_ids"]) for r in batch]
        width = max(len(r) for r in rows)
        return {
            "input_ids": torch.tensor([r + [self.pad_id] * (width - len(r)) for r in rows], dtype=torch.long),
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long),
            "start": torch.tensor([int(r["start"]) for r in batch] * 2, dtype=torch.long),
        }


def sequence_logps(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: torch.Tensor,
                   exclude_id: int | None = None) -> torch.Tensor:
    """Return per row the summed log-prob of tokens at positions >= ``start`` (real tokens only).

    ``exclude_id`` also drops every token with that id (the released pad = eos mask).
    """
    targets = input_ids[:, 1:]
    token_logps = -F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets, reduction="none")
    positions = torch.arange(1, input_ids.shape[1], device=input_ids.device).unsqueeze(0)
    mask = attention_mask[:, 1:].bool() & (positions >= start.unsqueeze(1))
    if exclude_id is not None:
        mask &= targets != exclude_id
    return (token_logps * mask).sum(-1)


def comedy_dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                    ref_rejected: torch.Tensor, beta: float, sft_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Return the loss and its parts: DPO (sigmoid, no label smoothing) + ``sft_weight`` x (-mean summed log pi_c)."""
    chosen_reward = beta * (policy_chosen - ref_chosen)
    rejected_reward = beta * (policy_rejected - ref_rejected)
    dpo = -F.logsigmoid(chosen_reward - rejected_reward).mean()
    sft = -policy_chosen.mean()
    loss = dpo + sft_weight * sft
    margin = (chosen_reward - rejected_reward).detach()
    stats = {"dpo_loss": float(dpo.detach()), "sft_loss": float(sft.detach()), "rewards/margins": float(margin.mean()),
             "rewards/accuracies": float((margin > 0).float().mean()), "logps/chosen": float(policy_chosen.detach().mean()),
             "logps/rejected": float(policy_rejected.detach().mean())}
    return loss, stats


def comedy_dpo_trainer(exclude_eos: bool) -> type:
    """Return the DPO Trainer class; beta and the SFT weight come from the run's DPOConfig."""
    from transformers import Trainer

    class ComedyDPOTrainer(Trainer):
        """``transformers.Trainer`` with COMEDY's pairwise loss and a frozen reference (see module docstring)."""

        def __init__(self, *args: Any, ref_model: Any = None, **kwargs: Any) -> None:
            if ref_model is None:
                raise ValueError("COMEDY DPO needs a frozen reference model")
            tokenizer = kwargs.get("processing_class")
            kwargs.setdefault("data_collator", PairCollator(pad_id=int(tokenizer.pad_token_id)))
            super().__init__(*args, **kwargs)
            weights = dict(zip(self.args.loss_type, self.args.loss_weights or [1.0] * len(self.args.loss_type)))
            self.beta, self.sft_weight = float(self.args.beta), float(weights.get("sft", 0.0))
            self.exclude_id = int(tokenizer.eos_token_id) if exclude_eos else None
            ref_model.eval().requires_grad_(False)
            if self.is_deepspeed_enabled:
                from trl.models.utils import prepare_deepspeed

                self.ref_model = prepare_deepspeed(ref_model, self.accelerator)
            else:
                self.ref_model = self.accelerator.prepare_model(ref_model, evaluation_mode=True)
            self.pair_stats: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

        def pair_logps(self, model: Any, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False).logits
            logps = sequence_logps(logits, inputs["input_ids"], inputs["attention_mask"], inputs["start"], self.exclude_id)
            half = logps.shape[0] // 2
            return logps[:half], logps[half:]

        def compute_loss(self, model: Any, inputs: Mapping[str, torch.Tensor], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            policy_chosen, policy_rejected = self.pair_logps(model, inputs)
            with torch.no_grad():
                ref_chosen, ref_rejected = self.pair_logps(self.ref_model, inputs)
            loss, stats = comedy_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, self.beta,
                                          self.sft_weight)
            for key, value in stats.items():
                self.pair_stats["train" if model.training else "eval"][key].append(value)
            return (loss, None) if return_outputs else loss

        def prediction_step(self, model: Any, inputs: Any, prediction_loss_only: bool, ignore_keys: Any = None) -> Any:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                loss = self.compute_loss(model, inputs)
            return loss.detach(), None, None

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            mode, prefix = ("eval", "eval_") if "eval_loss" in logs else ("train", "")
            for key, values in self.pair_stats[mode].items():
                if values:
                    logs[prefix + key] = sum(values) / len(values)
            self.pair_stats[mode].clear()
            super().log(logs, *args, **kwargs)

    return ComedyDPOTrainer
