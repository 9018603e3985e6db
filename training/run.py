"""``train()``: recipe + preset + data -> a checkpoint directory that ``dialbench eval --model`` loads.

The output directory is the model: ``config.json``/``model.safetensors`` (or an adapter) and the
tokenizer at its top level, ``dialbench_training.json`` saying how it was made, ``checkpoints/``
for --resume and ``logs/`` for TensorBoard. ``max_steps=0`` saves the freshly built model, which is
how an untrained baseline of the same architecture and tokenizer is produced.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.errors import UserError
from harness.jsonio import write_json
from training import distributed, engine
from training.adapters import is_adapter
from training.config import Preset
from training.recipe import Recipe, TrainingData, TrainingJob

META_FILE = "dialbench_training.json"
BASE_DIR = "base"
"""Where a randomly initialised base model is saved next to an adapter trained on it."""


def get_recipe(system: str) -> Recipe:
    """Return the training recipe of ``system``; systems without one are listed in the error."""
    from harness.plugins import SYSTEMS
    from harness.plugins import RECIPES

    if system not in RECIPES:
        if system in SYSTEMS:
            raise UserError(f"system '{system}' has no training recipe; trainable: {', '.join(RECIPES.names())}")
        SYSTEMS.get(system)  # raises the unknown-system error with suggestions
    return RECIPES.get(system)()


def _save_random_base(model: Any, output_dir: Path) -> None:
    """Save an adapter's base when it exists nowhere else (tiny presets) and point the adapter at it.

    The base is frozen, so saving it before training is exact (and avoids gathering ZeRO-3 shards);
    LoRA's wrapper layers are unwrapped from the state dict so the base loads as a plain model.
    """
    base = model.get_base_model()
    if getattr(base.config, "_name_or_path", ""):
        return
    state = {key.replace(".base_layer.", "."): value for key, value in base.state_dict().items() if ".lora_" not in key}
    base.save_pretrained(str(output_dir / BASE_DIR), state_dict=state)
    for config in model.peft_config.values():
        config.base_model_name_or_path = str((output_dir / BASE_DIR).resolve())


def precision_used(args: Any, model: Any, config: Any) -> dict[str, Any]:
    """Return the precision training actually ran in (not the preset's request: bf16 is asked for
    by default and silently stays off on CPU)."""
    dtype = next((str(p.dtype).replace("torch.", "") for p in model.parameters()), None)
    bf16 = bool(getattr(args, "bf16", False))
    fp16 = bool(getattr(args, "fp16", False))
    return {"bf16": bf16, "fp16": fp16, "bf16_requested": bool(config.bf16), "parameter_dtype": dtype,
            "compute": "bfloat16 autocast" if bf16 else ("float16 autocast" if fp16 else dtype),
            "device": "cpu" if getattr(args, "use_cpu", True) else "cuda"}


def execute(job: TrainingJob, output_dir: Path, *, args: Any = None, resume: bool = False,
            untrained: bool = False) -> dict[str, Any]:
    """Run ``job`` with Trainer arguments ``args`` (or just save it when ``untrained``); return the summary.

    The tokenizer is written before training so --resume reuses exactly the same token ids.
    """
    with cpu_threads(job.config.cpu_threads):
        return _execute(job, Path(output_dir), args=args, resume=resume, untrained=untrained)


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Set torch's CPU thread count for the run (CPU only) and restore it afterwards."""
    import torch

    if not threads or torch.cuda.is_available():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _execute(job: TrainingJob, output_dir: Path, *, args: Any, resume: bool, untrained: bool) -> dict[str, Any]:
    main = int(os.environ.get("RANK", "0")) == 0  # launcher ranks share the folder; rank 0 writes
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        if is_adapter(job.model):
            _save_random_base(job.model, output_dir)
    if untrained:
        if main:
            job.model.save_pretrained(str(output_dir))
        summary: dict[str, Any] = {"global_step": 0, "is_main_process": main}
    else:
        if main:
            job.tokenizer.save_pretrained(str(output_dir))
        summary = engine.run(job, args, output_dir, resume=resume)
    if summary.get("is_main_process", True):
        job.tokenizer.save_pretrained(str(output_dir))
    return summary


def train(system: str, data: TrainingData, output_dir: str | Path, *, preset: str | Preset = "tiny",
          deepspeed: str | None = None, resume: bool = False, max_steps: int | None = None,
          seed: int | None = None, base: str | None = None, overrides: Mapping[str, Any] | None = None,
          report_to: tuple[str, ...] = ("tensorboard",), stage: str | None = None) -> dict[str, Any]:
    """Train ``system`` with ``preset`` on ``data`` into ``output_dir``; return the run summary.

    ``preset`` is a preset name of the system's recipe or a Preset object (tests, experiments).
    ``overrides`` names TrainConfig fields, the recipe's own ``option_names``, or ``SYSTEM.NAME``
    switches (``with_options``); ``stage`` picks one ``--stage`` of a recipe with ``stage_names``. A recipe with
    ``stages()`` (MAGIC: a strategy model, then a response model) trains each stage in turn into its
    folder with the stage's preset of the same name; ``STAGE.FIELD`` overrides one stage only.
    """
    recipe = get_recipe(system)
    overrides = dict(overrides or {})
    prefix = f"{system}."
    for key in [k for k in overrides if k.startswith(prefix) and k[len(prefix):] in recipe.option_names]:
        overrides[key[len(prefix):]] = overrides.pop(key)  # --set magic.parts=... == --set parts=...
    switches = {key[len(prefix):]: overrides.pop(key) for key in list(overrides) if key.startswith(prefix)}
    settings = recipe.configure(overrides)
    recipe.check_data(data)
    stages = recipe.stages()
    if not stages:
        return _train_recipe(system, recipe, preset, data, Path(output_dir), deepspeed=deepspeed, resume=resume,
                             max_steps=max_steps, seed=seed, base=base, settings=settings, report_to=report_to,
                             switches=switches, stage=stage)
    summaries = {}
    for name, folder, part in stages:
        summaries[name] = _train_recipe(system, part, preset, data, Path(output_dir) / folder, deepspeed=deepspeed,
                                        resume=resume, max_steps=max_steps, seed=seed, base=base,
                                        settings=recipe.stage_settings(name, settings), report_to=report_to,
                                        switches=switches)
    return recipe.assemble(Path(output_dir), summaries)


def _train_recipe(system: str, recipe: Recipe, preset: str | Preset, data: TrainingData, output_dir: Path, *,
                  deepspeed: str | None, resume: bool, max_steps: int | None, seed: int | None, base: str | None,
                  settings: Mapping[str, Any], report_to: tuple[str, ...],
                  switches: Mapping[str, Any] | None = None, stage: str | None = None) -> dict[str, Any]:
    """Train one recipe (or one stage of a staged recipe) into ``output_dir``.

    ``switches`` are ``--set SYSTEM.NAME=VALUE`` settings the recipe's ``with_options`` applies to the
    preset (SPT's model shape and quirks); other settings are TrainConfig fields.
    """
    started = time.time()
    chosen = preset if isinstance(preset, Preset) else recipe.preset(preset)
    if switches:
        chosen = recipe.with_options(chosen, switches)
    chosen = recipe.for_stage(chosen, stage, base)
    config = chosen.train.with_overrides(**dict(settings))
    if seed is not None:
        config = config.with_overrides(seed=seed)
    if max_steps is not None and max_steps < 0:
        raise UserError(f"--max-steps must be 0 or more, got {max_steps}")
    ds_config = distributed.load_deepspeed_config(deepspeed) if deepspeed else None
    if ds_config is not None and max_steps != 0:
        distributed.prepare_environment()
    from transformers import set_seed

    set_seed(config.seed)
    args = None
    if max_steps != 0:  # before the model: under ZeRO-3, transformers then loads weights partitioned
        args = engine.make_arguments(config, output_dir, deepspeed=ds_config, max_steps=max_steps,
                                     has_eval=True, report_to=report_to)
    tokenizer_dir = output_dir if resume and (output_dir / "tokenizer_config.json").is_file() else None
    job = recipe.build(chosen, data, seed=config.seed, tokenizer_dir=tokenizer_dir, base=base)
    job.config = config
    if max_steps != 0 and not job.eval_dataset:  # no valid split: no evaluation, no best-model tracking
        args = engine.make_arguments(config, output_dir, deepspeed=ds_config, max_steps=max_steps,
                                     has_eval=False, report_to=report_to)
    summary = execute(job, output_dir, args=args, resume=resume, untrained=max_steps == 0)
    if summary.get("is_main_process", True):
        precision = precision_used(args, job.model, config)
        meta = {
            "system": system,
            "preset": chosen.to_json(),
            "train_config": {**config.to_json(), "bf16": precision["bf16"]},
            "precision": precision,
            "recipe_options": {k: str(v) for k, v in getattr(recipe, "options", {}).items()},
            "data": {"train": {k: str(v) for k, v in data.train.items()},
                     "valid": {k: str(v) for k, v in data.valid.items()}},
            "deepspeed": deepspeed,
            "zero_stage": distributed.zero_stage(ds_config),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "max_steps": max_steps,
            "base": base,
            "adapter": is_adapter(job.model),
            "recipe": job.meta,
            "result": summary,
            "wall_s": time.time() - started,
        }
        write_json(output_dir / META_FILE, json.loads(json.dumps(meta, default=str)))
    return summary
