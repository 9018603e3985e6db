"""Causal-LM SFT through the engine: loss falls, checkpoints reload exactly, resume, early stopping."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from harness.errors import UserError
from training import engine
from training.collate import IGNORE_INDEX, PaddingCollator, encode_segments
from training.recipe import TrainingData, split_head
from training.run import META_FILE, execute, get_recipe, train
from training_helpers import small_preset


def _data(path: Path) -> TrainingData:
    return TrainingData(train={"convai2_persona": path})


def test_segments_mask_prompt_and_padding() -> None:
    row = encode_segments([([5, 6], False), ([7, 8], True)], token_types=[1, 2])
    assert row == {"input_ids": [5, 6, 7, 8], "labels": [IGNORE_INDEX, IGNORE_INDEX, 7, 8], "token_type_ids": [1, 1, 2, 2]}
    assert encode_segments([([5, 6, 7], False), ([8, 9], True)], max_length=3)["input_ids"] == [7, 8, 9]  # keeps the end
    assert encode_segments([([5], False)]) is None  # nothing to learn
    batch = PaddingCollator(pad_id=0)([row, {"input_ids": [5], "labels": [5], "token_type_ids": [1]}])
    assert batch["labels"][1].tolist() == [5, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    assert batch["attention_mask"][1].tolist() == [1, 0, 0, 0]
    assert batch["input_ids"][1].tolist() == [5, 0, 0, 0]


def test_split_keeps_file_order() -> None:
    assert split_head(list(range(20)), 0.85) == (list(range(17)), [17, 18, 19])
    assert split_head([1], 0.85) == ([1], [])


def test_sft_lowers_loss_and_saved_checkpoint_reloads_identically(tmp_path: Path, convai2_file: Path) -> None:
    from transformers import AutoModelForCausalLM, set_seed

    preset = small_preset(epochs=3)
    set_seed(0)
    job = get_recipe("gpt2_dialogue").build(preset, _data(convai2_file), seed=0)
    assert job.meta["train_dialogues"] == 34 and job.meta["valid_dialogues"] == 6
    args = engine.make_arguments(preset.train, tmp_path, has_eval=True)
    summary = execute(job, tmp_path, args=args)
    losses = summary["losses"]
    assert sum(losses[-3:]) / 3 < losses[0] * 0.7
    evals = summary["evaluations"]
    assert evals and all(e["eval_ppl"] == pytest.approx(math.exp(e["eval_loss"])) for e in evals)
    assert summary["best_eval_loss"] == pytest.approx(min(e["eval_loss"] for e in evals))
    assert Path(summary["best_checkpoint"]).is_dir()  # best checkpoint kept for load_best_model_at_end
    assert list((tmp_path / engine.LOGS).rglob("events.out.tfevents.*"))  # TensorBoard logs
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "tokenizer.json").is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    batch = PaddingCollator(pad_id=job.tokenizer.eos_token_id)(job.train_dataset[:4])
    batch.pop("labels")
    job.model.eval()
    with torch.no_grad():
        assert torch.equal(job.model(**batch).logits, reloaded(**batch).logits)


def test_resume_continues_from_the_saved_step(tmp_path: Path, convai2_file: Path) -> None:
    preset = small_preset(eval_steps=2, epochs=5)
    first = train("gpt2_dialogue", _data(convai2_file), tmp_path, preset=preset, max_steps=4, report_to=())
    assert first["global_step"] == 4
    assert (tmp_path / engine.CHECKPOINTS / "checkpoint-4").is_dir()
    with pytest.raises(UserError, match="--resume"):
        train("gpt2_dialogue", _data(convai2_file), tmp_path, preset=preset, max_steps=6, report_to=())
    second = train("gpt2_dialogue", _data(convai2_file), tmp_path, preset=preset, max_steps=6, resume=True, report_to=())
    assert second["resumed_from"].endswith("checkpoint-4")
    assert second["global_step"] == 6
    assert len(second["losses"]) == 6  # 4 restored log entries + 2 new steps; steps 1-4 were not redone
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["result"]["global_step"] == 6


def test_resume_without_checkpoint_is_a_user_error(tmp_path: Path, convai2_file: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint"):
        train("gpt2_dialogue", _data(convai2_file), tmp_path, preset=small_preset(), resume=True, report_to=())


def test_early_stopping_ends_training_when_valid_loss_stalls(tmp_path: Path, convai2_file: Path) -> None:
    preset = small_preset(learning_rate=0.0, epochs=10, eval_steps=2, early_stopping_patience=1)
    summary = train("gpt2_dialogue", _data(convai2_file), tmp_path, preset=preset, report_to=())
    assert summary["global_step"] == 4  # eval at 2 sets the best, eval at 4 does not improve -> stop


def test_max_steps_zero_saves_the_untrained_model(tmp_path: Path, convai2_file: Path) -> None:
    summary = train("gpt2_dialogue", _data(convai2_file), tmp_path, preset=small_preset(), max_steps=0)
    assert summary["global_step"] == 0
    assert {"config.json", "model.safetensors", "tokenizer.json", META_FILE} <= {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / engine.CHECKPOINTS).exists()


def test_paper_preset_runs_from_a_local_gpt2_base(tmp_path: Path, convai2_file: Path) -> None:
    base = tmp_path / "base"
    train("gpt2_dialogue", _data(convai2_file), base, preset=small_preset(), max_steps=0)  # a local GPT-2 folder
    summary = train("gpt2_dialogue", _data(convai2_file), tmp_path / "paper", preset="paper", base=str(base),
                    max_steps=2, report_to=())
    assert summary["global_step"] == 2
    meta = json.loads((tmp_path / "paper" / META_FILE).read_text())
    assert meta["train_config"]["learning_rate"] == 2e-5 and meta["train_config"]["schedule"] == "polynomial"
    assert meta["train_config"]["schedule_power"] == 2.0 and meta["train_config"]["max_grad_norm"] is None
    assert meta["recipe"]["base"] == str(base)


def test_unloadable_base_is_a_user_error(tmp_path: Path, convai2_file: Path) -> None:
    with pytest.raises(UserError, match="cannot load base model"):
        train("gpt2_dialogue", _data(convai2_file), tmp_path, preset="paper", base=str(tmp_path / "no-such-model"),
              max_steps=0)


def test_length_grouped_sampling_pads_less_than_random_batches(tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer

    from training.config import TrainConfig

    lengths = [3 + (i * 37) % 120 for i in range(64)]
    rows = [{"input_ids": [1] * n, "labels": [1] * n} for n in lengths]
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=8, n_positions=128))
    padded = {}
    for sampling in ("random", "group_by_length"):
        config = TrainConfig(learning_rate=1e-3, batch_size=8, train_sampling=sampling)
        args = engine.make_arguments(config, tmp_path / sampling, has_eval=False)
        assert args.train_sampling_strategy == sampling
        loader = Trainer(model=model, args=args, train_dataset=rows, data_collator=PaddingCollator(pad_id=0)).get_train_dataloader()
        batches = list(loader)
        assert sum(int(b["attention_mask"].sum()) for b in batches) == sum(lengths)  # every row once
        padded[sampling] = sum(b["input_ids"].numel() for b in batches)
    assert padded["group_by_length"] < 0.8 * padded["random"], padded
    with pytest.raises(UserError, match="train_sampling"):
        TrainConfig(learning_rate=1e-3, train_sampling="by_length")
