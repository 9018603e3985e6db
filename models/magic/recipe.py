"""``dialbench train magic``: the strategy model (stage ``strategy``, into DIR/strategy) then the
response model (stage ``response``, into DIR itself), with ``DIR/magic.json`` tying them together.

Options (``--set NAME=VALUE``): ``motivations=FILE`` (a JSON list of strings aligned with the
training examples, the published ``motivations_4_LLaMA.json`` shape), ``truncation``,
``motivation``, ``scheduler`` (see ``response_recipe.py``), ``strategy_base``/``response_base``
(override the presets' base models), ``parts=strategy,response`` (train only some stages).
Training settings apply to both stages unless prefixed ``strategy.`` or ``response.``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from harness.errors import UserError
from harness.jsonio import write_json
from models.magic.data import TASK
from models.magic.response_recipe import RESPONSE_PRESETS, MagicResponseRecipe
from models.magic.strategy_recipe import MagicStrategyRecipe
from training.config import Preset
from training.recipe import Recipe, TrainingData, TrainingJob

MAGIC_FILE = "magic.json"
STRATEGY_DIR = "strategy"
STAGES = ("strategy", "response")


class MagicRecipe(Recipe):
    """Both MAGIC stages in sequence (see the module docstring)."""

    system = "magic"
    tasks = (TASK,)
    presets = RESPONSE_PRESETS
    option_names = ("motivations", "truncation", "motivation", "scheduler", "strategy_base", "response_base", "parts",
                    "sampling")

    def _parts(self) -> tuple[str, ...]:
        parts = tuple(p.strip() for p in str(self.options.get("parts", ",".join(STAGES))).split(",") if p.strip())
        bad = [p for p in parts if p not in STAGES]
        if bad or not parts:
            raise UserError(f"magic option parts: '{','.join(bad) or ''}' is not a stage; valid: {', '.join(STAGES)}")
        return parts

    def stages(self) -> list[tuple[str, str, Recipe]]:
        """Return the strategy stage (DIR/strategy) and the response stage (DIR)."""
        stages: list[tuple[str, str, Recipe]] = []
        for name in self._parts():
            recipe: Recipe = MagicStrategyRecipe() if name == "strategy" else MagicResponseRecipe()
            recipe.configure({k: v for k, v in self.options.items() if k in recipe.option_names})
            stages.append((name, STRATEGY_DIR if name == "strategy" else "", recipe))
        return stages

    def build(self, preset: Preset, data: TrainingData, *, seed: int, tokenizer_dir: Path | None = None,
              base: str | None = None) -> TrainingJob:
        """Staged: ``dialbench train`` calls the stages' recipes, never this one."""
        raise UserError("magic trains in stages; use training.run.train('magic', ...)")

    def assemble(self, output_dir: Path, summaries: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """Write ``magic.json`` (stage folders, switches, the strategy adapter's hash); return the summary."""
        from harness.checkpoints.fingerprint import files_hash, model_files

        info: dict[str, Any] = {"format": 1, "options": {k: str(v) for k, v in self.options.items()}}
        previous = _read(output_dir / MAGIC_FILE)
        strategy_dir = output_dir / STRATEGY_DIR
        if "strategy" in summaries or previous.get("strategy_model"):
            base = str(self.options.get("strategy_base") or "") or None
            meta = _read(strategy_dir / "dialbench_training.json")
            info["strategy_model"] = STRATEGY_DIR
            info["strategy_base"] = base or meta.get("recipe", {}).get("base") or previous.get("strategy_base")
            info["strategy_prompt_turns"] = meta.get("recipe", {}).get("prompt_turns")
            info["strategy_sha256"] = files_hash(model_files(strategy_dir), strategy_dir) if strategy_dir.is_dir() else None
        if "response" in summaries or previous.get("features"):
            meta = _read(output_dir / "dialbench_training.json")
            info["features"] = meta.get("recipe", {}).get("features", previous.get("features"))
            info["scheduler"] = meta.get("recipe", {}).get("scheduler", previous.get("scheduler"))
            previous_decoding = previous.get("standard_decoding") or {}
            info["standard_decoding"] = meta.get("recipe", {}).get("standard_decoding", previous_decoding)
        write_json(output_dir / MAGIC_FILE, info)
        last = summaries.get("response") or next(iter(summaries.values()))
        return {**last, "stages": {name: {k: s.get(k) for k in ("global_step", "train_loss", "best_eval_loss",
                                                                 "train_runtime_s", "tokens_per_s")}
                                   for name, s in summaries.items()}}


def _read(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
