"""Training on prompts that all start with the same task header: the header runs once per batch.

Every MAGIC strategy prompt starts with the same 218-token header; each batch runs it once, repeats
its key/value cache over the rows and feeds only each row's clip and target after it (see
``strategy_recipe.py``). ``frozen_states.py`` builds on these pieces.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from training.collate import IGNORE_INDEX, PaddingCollator


@dataclass
class SharedHeaderCollator(PaddingCollator):
    """Right-pad the rows (clip + target) as ``PaddingCollator`` does and add the shared header's ids
    as ``header_ids`` [1, H]."""

    header: tuple[int, ...] = ()

    def __call__(self, batch: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, Any]:
        import torch

        out = super().__call__(batch)
        out["header_ids"] = torch.tensor([list(self.header)], dtype=torch.long)
        return out


def shared_header_loss(model: Any, inputs: Mapping[str, Any]) -> Any:
    """Return the token-mean cross-entropy of the targets, the header run once for the whole batch.

    The header's key/value cache (computed with gradient, so the adapters in the header's layers
    learn from it too) is repeated over the batch; the rows continue from it at positions H, H+1, ...
    exactly as in the full prompt, and only the hidden states that predict a target token go
    through the output projection.
    """
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = base.get_decoder()
    ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
    header = inputs["header_ids"].to(ids.device)
    cache = body(input_ids=header, use_cache=True).past_key_values
    cache.batch_repeat_interleave(ids.shape[0])
    full_mask = torch.cat([mask.new_ones(ids.shape[0], header.shape[1]), mask], dim=1)
    hidden = body(input_ids=ids, attention_mask=full_mask, past_key_values=cache, use_cache=True).last_hidden_state
    # position t predicts token t+1; a row's first token follows the header's last, which is never a target
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = base.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def make_shared_header_trainer() -> type:
    """Return a Trainer whose loss is ``shared_header_loss`` (training and evaluation)."""
    import torch
    from transformers import Trainer

    class SharedHeaderTrainer(Trainer):
        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
            loss = shared_header_loss(model, inputs)
            return (loss, {"loss": loss}) if return_outputs else loss

        def prediction_step(self, model: Any, inputs: Any, prediction_loss_only: bool, ignore_keys: Any = None) -> Any:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                loss = shared_header_loss(model, inputs)
            return loss.detach(), None, None

    return SharedHeaderTrainer
