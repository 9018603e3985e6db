"""Runs a TrainingJob on the Hugging Face Trainer (SFT, seq2seq) or TRL's DPOTrainer (DPO).

The Trainer already provides what the recipes need and what a home-made loop would get subtly
wrong: DeepSpeed ZeRO (engine, consolidation of ZeRO-3 weights on save), gradient accumulation,
transformers' schedules with warmup, clipping, evaluation every N steps, best-checkpoint keeping,
early stopping, resume (optimizer, scheduler, RNG and data order), TensorBoard and a tqdm bar. This
module only maps a TrainConfig onto it and adds perplexity to the evaluation logs.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from harness.errors import UserError
from training.config import TrainConfig
from training.recipe import TrainingJob

CHECKPOINTS = "checkpoints"
"""Sub-folder of the output directory holding resumable Trainer checkpoints."""
LOGS = "logs"
"""Sub-folder of the output directory holding TensorBoard event files."""


def make_arguments(config: TrainConfig, output_dir: Path, *, deepspeed: dict[str, Any] | None = None,
                   max_steps: int | None = None, has_eval: bool = False, report_to: tuple[str, ...] = ("tensorboard",)) -> Any:
    """Return ``TrainingArguments`` (``DPOConfig`` for DPO) for ``config``.

    Built before the model on purpose: with a ZeRO-3 config, transformers then partitions weights
    while loading them (``zero.Init``) instead of materialising the full model on every rank.
    """
    import torch

    cuda = torch.cuda.is_available()
    per_epoch = config.eval_steps is None
    kwargs: dict[str, Any] = dict(
        output_dir=str(Path(output_dir) / CHECKPOINTS),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=max_steps if max_steps is not None and max_steps > 0 else -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        lr_scheduler_type=config.schedule,
        lr_scheduler_kwargs={"power": config.schedule_power} if config.schedule == "polynomial" else {},
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
        adam_beta1=config.adam_betas[0],
        adam_beta2=config.adam_betas[1],
        optim="adamw_torch",
        max_grad_norm=config.max_grad_norm or 0.0,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bool(config.bf16 and cuda and torch.cuda.is_bf16_supported()),
        use_cpu=not cuda,
        report_to=list(report_to),
        save_total_limit=config.save_total_limit,
        save_strategy="epoch" if per_epoch else "steps",
        save_steps=config.eval_steps or 500,
        eval_strategy=("epoch" if per_epoch else "steps") if has_eval else "no",
        eval_steps=config.eval_steps,
        load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss" if has_eval else None,
        greater_is_better=False if has_eval else None,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        train_sampling_strategy=config.train_sampling,
        deepspeed=deepspeed,
    )
    if config.gradient_checkpointing:
        kwargs["gradient_checkpointing"] = True
    if config.method == "dpo":
        from trl import DPOConfig

        losses, weights = (["sigmoid", "sft"], [1.0, config.dpo_sft_weight]) if config.dpo_sft_weight else (["sigmoid"], None)
        return DPOConfig(**kwargs, beta=config.dpo_beta, loss_type=losses, loss_weights=weights,
                         max_length=config.max_length)
    from transformers import TrainingArguments

    return TrainingArguments(**kwargs)


def perplexity(loss: float) -> float:
    """Return exp(loss), capped so a diverged run logs a large number instead of overflowing."""
    return math.exp(min(loss, 50.0))


def _trainer_class(job: TrainingJob) -> type:
    """Return the Trainer class for ``job``, with eval perplexity added to its logs for LM objectives."""
    if job.config.method == "dpo":
        from trl import DPOTrainer

        return job.trainer_class or DPOTrainer
    from transformers import Trainer

    base = job.trainer_class or Trainer

    class PerplexityTrainer(base):  # type: ignore[misc, valid-type]
        """Adds ``eval_ppl`` = exp(eval_loss): HF's token-mean loss averaged over eval batches.

        A trainer whose loss adds other terms to the NLL (SPT) defines ``perplexity_loss(logs)`` to
        return the NLL part, so its perplexity is a perplexity and not exp of the whole objective.
        """

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if "eval_loss" in logs:
                nll = getattr(self, "perplexity_loss", None)
                logs["eval_ppl"] = perplexity(nll(logs) if nll is not None else logs["eval_loss"])
            super().log(logs, *args, **kwargs)

    return PerplexityTrainer


def build_trainer(job: TrainingJob, args: Any) -> Any:
    """Return the Trainer for ``job`` with ``args`` (early stopping attached when configured)."""
    from transformers import EarlyStoppingCallback

    callbacks = []
    if job.eval_dataset and job.config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=job.config.early_stopping_patience))
    kwargs: dict[str, Any] = dict(model=job.model, args=args, processing_class=job.tokenizer, callbacks=callbacks)
    if job.config.method == "dpo":
        from datasets import Dataset

        kwargs.update(ref_model=job.ref_model, train_dataset=Dataset.from_list(list(job.train_dataset)),
                      eval_dataset=Dataset.from_list(list(job.eval_dataset)) if job.eval_dataset else None)
    else:
        kwargs.update(train_dataset=job.train_dataset, eval_dataset=job.eval_dataset or None,
                      data_collator=job.collator)
    return _trainer_class(job)(**kwargs)


def last_checkpoint(output_dir: Path) -> str | None:
    """Return the newest resumable checkpoint under ``output_dir``, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(output_dir) / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _tokens_seen(checkpoint: str | None) -> int:
    """Return the input tokens a resumed-from checkpoint had already seen (0 for a fresh run)."""
    if checkpoint is None:
        return 0
    state = Path(checkpoint) / "trainer_state.json"
    return int(json.loads(state.read_text()).get("num_input_tokens_seen", 0) or 0) if state.is_file() else 0


def run(job: TrainingJob, args: Any, output_dir: Path, *, resume: bool = False) -> dict[str, Any]:
    """Train ``job``, save the final (best, if evaluated) model into ``output_dir``; return a summary.

    The final save goes through ``Trainer.save_model``: safetensors, ZeRO-3 shards gathered into one
    consolidated model, adapters saved as adapter directories.
    """
    output_dir = Path(output_dir)
    checkpoint = last_checkpoint(output_dir)
    if resume and checkpoint is None:
        raise UserError(f"--resume: no checkpoint in {output_dir / CHECKPOINTS} to resume from")
    if not resume and checkpoint is not None:
        raise UserError(f"{output_dir} already holds checkpoints; pass --resume to continue or choose another --output")
    previous = os.environ.get("TENSORBOARD_LOGGING_DIR")
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(output_dir / LOGS)
    try:
        trainer = build_trainer(job, args)
        result = trainer.train(resume_from_checkpoint=checkpoint if resume else None)
        trainer.save_model(str(output_dir))
    finally:
        if previous is None:
            os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
        else:
            os.environ["TENSORBOARD_LOGGING_DIR"] = previous
    state = trainer.state
    evals = [entry for entry in state.log_history if "eval_loss" in entry]
    runtime = float(result.metrics.get("train_runtime", 0.0)) or 1e-9
    tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0) - _tokens_seen(checkpoint if resume else None)
    return {
        "global_step": state.global_step,
        "resumed_from": checkpoint if resume else None,
        "train_loss": result.metrics.get("train_loss"),
        "train_runtime_s": runtime,
        "train_tokens": tokens,
        "tokens_per_s": tokens / runtime,
        "best_checkpoint": state.best_model_checkpoint,
        "best_eval_loss": state.best_metric,
        "evaluations": evals,
        "losses": [entry["loss"] for entry in state.log_history if "loss" in entry],
        "is_main_process": trainer.is_world_process_zero(),
    }
