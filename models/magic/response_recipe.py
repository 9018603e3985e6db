"""Training stage 2: the response model (systems.md sections 6.3-6.4).

Loss CE(generator) + 0.2 x CE(strategy classifier); AdamW (weight decay 0.01) with a linear
schedule and no warmup (``paper``; ``tiny`` warms up over 5% of the steps); the banks grow during training only. Switches (``--set NAME=VALUE``):
``truncation`` left (default) | right (released); ``motivation`` unused (released default) |
encoded (the paper's intent); ``scheduler`` per_step (default) | per_epoch (released: one
``scheduler.step()`` per epoch, so the learning rate stays nearly constant). The strategy of a
training example is its gold label (MAGIC overwrites it with LLaMA's inference when those files
exist; give such labels as the data's strategies to reproduce that).

``tiny`` draws its random weights with std 0.08 (``init_std``; BART's default is 0.02). At 0.02 the
attention of every layer starts uniform, so each encoder position receives the same gradient and
the shared (position-independent) part of the states grows about sequence-length times faster than
anything token-specific: after one epoch on ESConv the encoder's output was the same vector for
every position and every dialogue (std over positions 0.003, cosine between two dialogues' mean
states 1.0; a plain ``BartForConditionalGeneration`` and an mBART-style pre-LN stack do the same),
and the decoder said "I am so sorry to hear that ." whatever the context. With std 0.08 attention
is content-dependent from the first step and the states stay distinct (std 0.93, cosine 0.80 after
three epochs). ``max_source`` 96 keeps the latest turns (left truncation) and halves the encoder's cost.

``standard_decoding`` (model key; written to ``magic.json``, read by the ``magic`` system as its
beam defaults): ``tiny`` decodes with length penalty 1.3 and a 3-gram block. At MAGIC's 1.0 the
tiny generator's memory-steered beams settle on each strategy's modal short reply, half the
reference length; a length term alone turns them into loops. Both values were chosen on a split
of the training dialogues (README, MAGIC), never on held-out data; ``paper`` keeps 1.0 and no block.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError, first_line
from harness.records import Example
from models.magic.bank import BANK_FILE
from models.magic.data import TASK, load_motivations, split_examples
from models.magic.features import FeatureSpec, Featurizer, MagicCollator
from models.magic.modeling import MOTIVATION_MODES, MagicConfig, MagicResponseModel
from training.collate import count_target_tokens
from training.config import Preset, TrainConfig
from training.recipe import Recipe, TrainingData, TrainingJob
from training.tokenizer import train_bpe_tokenizer

SCHEDULERS = ("per_step", "per_epoch")

RESPONSE_PRESETS = {
    "tiny": Preset(
        name="tiny",
        description="random-init BART-architecture model (2+2 layers, 128 dims, strategy encoder 2 layers, weights "
                    "drawn with std 0.08, dropout 0.25) with a BPE tokenizer trained on the training split; minutes on 2 CPU cores",
        train=TrainConfig(learning_rate=1e-3, epochs=12, batch_size=16, schedule="linear", warmup=0.05,
                          weight_decay=0.01, max_grad_norm=1.0, early_stopping_patience=3, logging_steps=20,
                          cpu_threads=1, save_total_limit=1),
        model={"d_model": 128, "layers": 2, "heads": 4, "ffn_dim": 256, "vocab_size": 3000, "max_positions": 512,
               "init_std": 0.08, "dropout": 0.25,
               "standard_decoding": {"length_penalty": 1.3, "no_repeat_ngram_size": 3}},
        data={"max_source": 96, "max_target": 40, "memory_length": 32, "max_motivation": 48, "train_fraction": 0.8},
    ),
    "paper": Preset(
        name="paper",
        description="facebook/bart-base, AdamW lr 5e-5 (wd 0.01), linear schedule without warmup, batch 16, up to "
                    "20 epochs, early stop after 5 epochs without improvement, source 512, memory 64",
        train=TrainConfig(learning_rate=5e-5, epochs=20, batch_size=16, schedule="linear", weight_decay=0.01,
                          early_stopping_patience=5, logging_steps=50, save_total_limit=2),
        model={"base": "facebook/bart-base"},
        data={"max_source": 512, "max_target": 64, "memory_length": 64, "max_motivation": 512, "train_fraction": 0.8},
    ),
}


def _choice(options: dict[str, Any], name: str, choices: Sequence[str]) -> str:
    value = str(options.get(name, choices[0]))
    if value not in choices:
        raise UserError(f"magic option {name}: '{value}' is not one of {', '.join(choices)}")
    return value


def make_trainer_class(scheduler: str) -> type:
    """Return a Trainer that restores the best checkpoint's banks and, for ``per_epoch``, steps the
    linear schedule once per epoch as the released ``main.py`` does."""
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import Trainer

    class MagicTrainer(Trainer):
        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if scheduler != "per_epoch":
                return super().create_scheduler(num_training_steps, optimizer)
            epochs = max(1, math.ceil(self.args.num_train_epochs))
            per_epoch = max(1, num_training_steps // epochs)
            total = max(1, num_training_steps)
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer,
                                         lambda step: max(0.0, 1.0 - (step // per_epoch) / total))
            return self.lr_scheduler

        def _load_best_model(self) -> None:
            super()._load_best_model()
            best = self.state.best_model_checkpoint
            if best and (Path(best) / BANK_FILE).is_file():
                self.model.bank.load(Path(best))
                self.model.bank.to(next(self.model.parameters()).device)

    return MagicTrainer


class MagicResponseRecipe(Recipe):
    """The BART response model with strategy memory."""

    system = "magic"
    tasks = (TASK,)
    presets = RESPONSE_PRESETS
    option_names = ("motivations", "truncation", "motivation", "scheduler", "response_base")

    def feature_spec(self, preset: Preset) -> FeatureSpec:
        """Return the featurisation of ``preset`` with the user's switches."""
        return FeatureSpec(max_source=int(preset.data["max_source"]), max_target=int(preset.data["max_target"]),
                           memory_length=int(preset.data["memory_length"]),
                           max_motivation=int(preset.data["max_motivation"]),
                           truncation=_choice(self.options, "truncation", ("left", "right")),
                           motivation=_choice(self.options, "motivation", MOTIVATION_MODES))

    def tokenizer(self, preset: Preset, train: Sequence[Example], tokenizer_dir: Path | None, base: str | None) -> Any:
        """Return the saved tokenizer (resume), the base's, or a BPE trained on the training split."""
        from transformers import AutoTokenizer

        if tokenizer_dir is not None:
            return AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if base:
            try:
                return AutoTokenizer.from_pretrained(base)
            except (OSError, ValueError) as err:
                raise UserError(f"cannot load response base tokenizer '{base}' ({first_line(err)})") from None
        texts = [str(e.inputs.get("situation", "")) for e in train] + [t.text for e in train for t in e.context[-1:]]
        texts += [e.references[0] for e in train if e.references]
        tokenizer = train_bpe_tokenizer(texts, vocab_size=int(preset.model.get("vocab_size", 3000)), eos="</s>",
                                        special_tokens=["<s>", "<pad>"])
        tokenizer.bos_token = "<s>"
        tokenizer.pad_token = "<pad>"
        return tokenizer

    def model(self, preset: Preset, tokenizer: Any, base: str | None, motivation: str, memory_length: int) -> Any:
        """Return the response model: bart-base weights in both encoders and the decoder, or random init."""
        special = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.bos_token_id,
                       forced_eos_token_id=None, forced_bos_token_id=None)
        extra = dict(motivation=motivation, memory_length=memory_length)
        if not base:
            dims = preset.model
            config = MagicConfig(vocab_size=len(tokenizer), d_model=dims["d_model"], encoder_layers=dims["layers"],
                                 decoder_layers=dims["layers"], encoder_attention_heads=dims["heads"],
                                 decoder_attention_heads=dims["heads"], encoder_ffn_dim=dims["ffn_dim"],
                                 decoder_ffn_dim=dims["ffn_dim"], max_position_embeddings=dims["max_positions"],
                                 init_std=float(dims.get("init_std", 0.02)), dropout=float(dims.get("dropout", 0.1)),
                                 **special, **extra)
            return MagicResponseModel(config)
        from transformers import BartModel

        try:
            bart = BartModel.from_pretrained(base)
        except (OSError, ValueError) as err:
            raise UserError(f"cannot load response base model '{base}' ({first_line(err)})") from None
        settings = {k: v for k, v in bart.config.to_dict().items() if k not in ("model_type", "architectures")}
        settings.update({k: v for k, v in special.items() if v is not None or k.startswith("forced")})
        settings["vocab_size"] = bart.config.vocab_size
        model = MagicResponseModel(MagicConfig(**{**settings, **extra}))
        model.encoder.load_state_dict(bart.encoder.state_dict())
        model.strategy_encoder.load_state_dict(bart.encoder.state_dict())
        model.decoder.load_state_dict(bart.decoder.state_dict())
        return model

    def build(self, preset: Preset, data: TrainingData, *, seed: int, tokenizer_dir: Path | None = None,
              base: str | None = None) -> TrainingJob:
        """Return the response-model job (see the module docstring)."""
        train, valid = split_examples(data, float(preset.data.get("train_fraction", 0.8)))
        motivations = load_motivations(self.options.get("motivations"), train)
        base = str(self.options.get("response_base") or preset.model.get("base") or "") or None
        spec = self.feature_spec(preset)
        scheduler = _choice(self.options, "scheduler", SCHEDULERS)
        tokenizer = self.tokenizer(preset, train, tokenizer_dir, base)
        model = self.model(preset, tokenizer, base, spec.motivation, spec.memory_length)
        featurizer = Featurizer(tokenizer, spec)
        train_rows = [featurizer.row(e, e.label, motivations[i] if motivations else None) for i, e in enumerate(train)]
        valid_rows = [featurizer.row(e, e.label) for e in valid]
        return TrainingJob(
            model=model, tokenizer=tokenizer, train_dataset=train_rows, eval_dataset=valid_rows or None,
            config=preset.train, collator=MagicCollator(pad_id=featurizer.pad, memory_length=spec.memory_length),
            trainer_class=make_trainer_class(scheduler),
            meta={"part": "response", "base": base, "train_examples": len(train_rows), "valid_examples": len(valid_rows),
                  "vocab_size": len(tokenizer), "features": spec.__dict__, "scheduler": scheduler,
                  "standard_decoding": dict(preset.model.get("standard_decoding") or {}),
                  "motivations": bool(motivations), "train_target_tokens": count_target_tokens(train_rows)},
        )
