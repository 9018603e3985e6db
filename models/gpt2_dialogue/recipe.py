"""Training recipe of ``gpt2_dialogue`` (devjwsong's GPT-2 multi-turn dialogue; systems.md §4).

Data: each task file is read by its task plug-in; persona lines are dropped, PersonaChat's
``__ SILENCE __`` too (§4.1); the first 85% of each file's dialogues (in file order) train and the
rest validate, unless a separate valid file is given. Text keeps the dataset's own form (no
re-casing): the paper's normalisation served its multi-source mix, while here generations and
reference perplexities are scored against the task's references as written.
Examples: one per bot (``<sp2>``) utterance with at least one utterance before it, in windows of
at most 5 utterances, loss on the response and eos only (§4.2; ``models/gpt2_dialogue/format.py``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from models.gpt2_dialogue.format import MAX_TURNS, SILENCE, DialogueFormat, add_dialogue_tokens, training_windows
from harness.errors import UserError
from harness.records import Dialogue
from training.collate import PaddingCollator, count_target_tokens
from training.config import Preset, TrainConfig
from training.recipe import Recipe, TrainingData, TrainingJob, load_dialogues, split_head
from training.tokenizer import train_bpe_tokenizer

PRESETS = {
    "tiny": Preset(
        name="tiny",
        description="random-init 2-layer GPT-2 (128 dims) + a BPE tokenizer trained on the training split; minutes on 2 CPU cores",
        train=TrainConfig(learning_rate=2e-3, epochs=8, batch_size=16, schedule="cosine", warmup=0.05,
                          weight_decay=0.01, max_grad_norm=1.0, early_stopping_patience=2, logging_steps=20,
                          cpu_threads=1),
        model={"n_layer": 2, "n_embd": 128, "n_head": 4, "n_positions": 256, "vocab_size": 2000},
        data={"max_turns": MAX_TURNS, "max_len": 256, "train_fraction": 0.85},
    ),
    "paper": Preset(
        name="paper",
        description="gpt2 fine-tuned as published: AdamW lr 2e-5 (wd 0.01), batch 8, 10 epochs, polynomial decay "
                    "power 2, no warmup, no clipping, seed 0, best valid loss kept",
        train=TrainConfig(learning_rate=2e-5, epochs=10, batch_size=8, schedule="polynomial", schedule_power=2.0,
                          warmup=0.0, weight_decay=0.01, max_grad_norm=None, seed=0, logging_steps=100),
        model={"base": "gpt2"},
        data={"max_turns": MAX_TURNS, "max_len": 1024, "train_fraction": 0.85},
    ),
}


def _utterances(dialogue: Dialogue) -> list[tuple[str, str]]:
    return [(turn.speaker, turn.text) for turn in dialogue.turns if turn.text.strip() and turn.text.strip() != SILENCE]


class GPT2DialogueRecipe(Recipe):
    """Full fine-tuning of a GPT-2 LM head model on speaker-tagged dialogue windows."""

    system = "gpt2_dialogue"
    tasks = ("convai2_persona", "open_dialogue")
    presets = PRESETS

    def split(self, preset: Preset, data: TrainingData) -> tuple[list[Dialogue], list[Dialogue]]:
        """Return (train, valid) dialogues: per task, a given valid file or the paper's 85/15 head split."""
        train: list[Dialogue] = []
        valid: list[Dialogue] = []
        fraction = float(preset.data.get("train_fraction", 0.85))
        for task, path in data.train.items():
            dialogues = load_dialogues(task, path)
            if task in data.valid:
                train += dialogues
                valid += load_dialogues(task, data.valid[task])
            else:
                head, rest = split_head(dialogues, fraction)
                train += head
                valid += rest
        return train, valid

    def tokenizer(self, preset: Preset, train: Sequence[Dialogue], tokenizer_dir: Path | None, base: str | None) -> Any:
        """Return the tokenizer: the saved one on resume, the base's, or one trained on ``train``."""
        from transformers import AutoTokenizer

        if tokenizer_dir is not None:
            return AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if base:
            tokenizer = _load_base(AutoTokenizer, base)
        else:
            texts = [text for dialogue in train for _, text in _utterances(dialogue)]
            tokenizer = train_bpe_tokenizer(texts, vocab_size=int(preset.model.get("vocab_size", 3000)))
        add_dialogue_tokens(tokenizer)
        return tokenizer

    def model(self, preset: Preset, tokenizer: Any, base: str | None) -> Any:
        """Return the model: the base with resized embeddings, or a random GPT-2 of the preset's size."""
        from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

        if base:
            model = _load_base(AutoModelForCausalLM, base)
            if model.config.model_type != "gpt2":
                raise UserError(f"base model '{base}' is {model.config.model_type}, not gpt2 (token types need GPT-2)")
            model.resize_token_embeddings(len(tokenizer))
        else:
            arch = {key: preset.model[key] for key in ("n_layer", "n_embd", "n_head", "n_positions")}
            special = {"bos_token_id": tokenizer.convert_tokens_to_ids("<bos>"), "eos_token_id": tokenizer.eos_token_id}
            model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), **arch, **special))
        model.config.bos_token_id = tokenizer.convert_tokens_to_ids("<bos>")
        model.config.eos_token_id = model.config.pad_token_id = tokenizer.eos_token_id
        model.generation_config.bos_token_id = model.config.bos_token_id
        model.generation_config.eos_token_id = model.generation_config.pad_token_id = tokenizer.eos_token_id
        return model

    def features(self, fmt: DialogueFormat, tokenizer: Any, dialogues: Sequence[Dialogue], max_turns: int,
                 max_len: int) -> list[dict[str, list[int]]]:
        """Return the training windows of ``dialogues``."""
        rows = []
        for dialogue in dialogues:
            utterances = [(fmt.speaker(role), tokenizer.encode(text, add_special_tokens=False))
                          for role, text in _utterances(dialogue)]
            rows += training_windows(fmt, utterances, max_turns=max_turns, max_len=max_len)
        return rows

    def build(self, preset: Preset, data: TrainingData, *, seed: int, tokenizer_dir: Path | None = None,
              base: str | None = None) -> TrainingJob:
        """Return the job: tokenizer, model and windows for ``preset`` (see the module docstring)."""
        base = base or preset.model.get("base")
        train, valid = self.split(preset, data)
        tokenizer = self.tokenizer(preset, train, tokenizer_dir, base)
        model = self.model(preset, tokenizer, base)
        fmt = DialogueFormat.of(tokenizer)
        max_turns = int(preset.data.get("max_turns", MAX_TURNS))
        max_len = min(int(preset.data.get("max_len", 1024)), int(model.config.n_positions))
        train_rows = self.features(fmt, tokenizer, train, max_turns, max_len)
        if not train_rows:
            files = ", ".join(f"{task}={path}" for task, path in data.train.items())
            raise UserError(f"{files}: no training targets for gpt2_dialogue (needs bot replies that follow another utterance)")
        valid_rows = self.features(fmt, tokenizer, valid, max_turns, max_len)
        return TrainingJob(
            model=model, tokenizer=tokenizer, train_dataset=train_rows, eval_dataset=valid_rows or None,
            config=preset.train, collator=PaddingCollator(pad_id=fmt.eos),
            meta={"train_dialogues": len(train), "valid_dialogues": len(valid), "train_examples": len(train_rows),
                  "valid_examples": len(valid_rows), "train_target_tokens": count_target_tokens(train_rows),
                  "base": base, "vocab_size": len(tokenizer)},
        )


def _load_base(auto_class: Any, name: str) -> Any:
    """Load a base tokenizer/model by name or path; failure (offline, typo) is a one-line UserError."""
    try:
        return auto_class.from_pretrained(name)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load base model '{name}' ({first}); pass --base PATH to a local copy") from None
