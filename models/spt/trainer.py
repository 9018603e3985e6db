"""The pieces SPT adds to the shared training engine: its collator and a Trainer that saves SPT checkpoints.

The objective itself lives in the model's forward (``losses.objective``), so the stock
``Trainer.compute_loss`` optimises it; this Trainer only (a) saves/loads the trained tensors in the
SPT layout instead of a full state dict (which would copy the frozen base into every checkpoint),
(b) reports evaluation loss without gathering logits, and (c) logs each loss term to TensorBoard.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from training.collate import PaddingCollator


@dataclass
class SPTCollator:
    """Right-pads inputs/labels and selector inputs; adds the contrastive pair labels of the batch.

    ``selector_input=released`` feeds the selector the training input with its target (released code);
    ``prompt`` the inference prompt only. ``contrastive_text`` picks persona or context texts.
    """

    pad_id: int
    selector_input: str = "prompt"
    contrastive_text: str = "context"
    threshold: float = 20.0
    selector: bool = True

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        from models.spt.losses import bleu_pair_targets

        pad = PaddingCollator(pad_id=self.pad_id)
        batch = pad([{"input_ids": row["input_ids"], "labels": row["labels"]} for row in rows])
        if not self.selector:
            return batch
        key = "input_ids" if self.selector_input == "released" else "selector_ids"
        selector = pad([{"input_ids": row[key]} for row in rows])
        batch["selector_ids"] = selector["input_ids"]
        batch["selector_mask"] = selector["attention_mask"]
        if len(rows) > 1:
            batch["pair_targets"] = bleu_pair_targets([str(row[self.contrastive_text]) for row in rows], self.threshold)
        return batch


def trainer_class() -> type:
    """Return the SPT Trainer class (built lazily: importing transformers' Trainer is slow)."""
    import torch
    from transformers import Trainer

    from models.spt import checkpoint

    class SPTTrainer(Trainer):
        """Trainer that keeps SPT checkpoints small and logs every loss term."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._term_sums: dict[str, float] = {}
            self._term_count = 0
            self._eval_nll: list[float] = []

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, **kwargs: Any) -> Any:
            outputs = model(**inputs)
            if model.training:
                for key, value in outputs.items():
                    if key.startswith("loss_"):
                        self._term_sums[key] = self._term_sums.get(key, 0.0) + float(value)
                self._term_count += 1
            return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if "loss" in logs and self._term_count:
                logs.update({key: value / self._term_count for key, value in self._term_sums.items()})
                self._term_sums, self._term_count = {}, 0
            super().log(logs, *args, **kwargs)

        def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                            ignore_keys: Any = None) -> tuple[Any, None, None]:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                outputs = model(**inputs)
            self._eval_nll.append(float(outputs["loss_nll"]))
            return outputs["loss"].detach(), None, None

        def perplexity_loss(self, logs: dict[str, float]) -> float:
            """Return the evaluation's mean NLL term (all K prompted copies), also logged as ``eval_loss_nll``:
            ``eval_loss`` is the whole objective (NLL + selection + fusion + contrastive)."""
            if not self._eval_nll:
                return logs["eval_loss"]
            logs["eval_loss_nll"] = sum(self._eval_nll) / len(self._eval_nll)
            self._eval_nll = []
            return logs["eval_loss_nll"]

        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            if self.args.should_save:
                checkpoint.save(self.accelerator.unwrap_model(self.model), self.processing_class,
                                output_dir or self.args.output_dir)

        def _load_spt(self, folder: str | None) -> bool:
            from safetensors.torch import load_file

            path = os.path.join(folder or "", checkpoint.WEIGHTS)
            if not folder or not os.path.isfile(path):
                return False
            checkpoint.apply_tensors(self.accelerator.unwrap_model(self.model), load_file(path), path)
            return True

        def _load_best_model(self) -> None:
            if self.is_deepspeed_enabled or not self._load_spt(self.state.best_model_checkpoint):
                super()._load_best_model()

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            if self.is_deepspeed_enabled or not self._load_spt(resume_from_checkpoint):
                super()._load_from_checkpoint(resume_from_checkpoint, model)

    return SPTTrainer
