"""LoRA and prompt tuning (peft) on a tiny Llama, DPO (TRL) and encoder-decoder SFT, all on CPU."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from training import engine
from training.adapters import AdapterSpec, apply_adapter, load_adapter_model
from training.collate import PaddingCollator, encode_pair, encode_segments
from training.config import TrainConfig
from training.recipe import TrainingJob
from training.run import BASE_DIR, execute
from training.tokenizer import train_bpe_tokenizer
from training_helpers import tiny_llama


@pytest.fixture(scope="module")
def tokenizer(text_corpus: list[str]):
    return train_bpe_tokenizer(text_corpus, vocab_size=400)


def _sft_rows(tokenizer, corpus: list[str]) -> list[dict]:
    rows = []
    for line in corpus:
        prompt, answer = line.split(" bot : ")
        segments = [(tokenizer.encode(prompt + " bot :"), False), (tokenizer.encode(" " + answer) + [tokenizer.eos_token_id], True)]
        rows.append(encode_segments(segments))
    return rows


def _train(tmp_path: Path, job: TrainingJob) -> dict:
    args = engine.make_arguments(job.config, tmp_path, report_to=())
    return execute(job, tmp_path, args=args)


@pytest.mark.parametrize("kind, lr, trainable_max", [("lora", 1e-2, 20_000), ("prompt_tuning", 5e-2, 8 * 64)])
def test_adapter_trains_only_its_parameters_and_reloads(tmp_path: Path, tokenizer, text_corpus, kind, lr, trainable_max) -> None:
    from transformers import set_seed

    set_seed(0)
    model = apply_adapter(tiny_llama(tokenizer), AdapterSpec(kind=kind, r=8, num_virtual_tokens=8))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable <= trainable_max
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    config = TrainConfig(learning_rate=lr, epochs=2, batch_size=16, logging_steps=1, bf16=False)
    job = TrainingJob(model=model, tokenizer=tokenizer, train_dataset=_sft_rows(tokenizer, text_corpus), config=config,
                      collator=PaddingCollator(pad_id=tokenizer.eos_token_id))
    summary = _train(tmp_path, job)
    losses = summary["losses"]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.05
    assert all(torch.equal(p, frozen_before[n]) for n, p in model.named_parameters() if n in frozen_before)
    assert (tmp_path / "adapter_config.json").is_file() and (tmp_path / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "adapter_config.json").read_text())["base_model_name_or_path"] == str((tmp_path / BASE_DIR).resolve())
    reloaded = load_adapter_model(str(tmp_path)).eval()
    model.eval()
    batch = PaddingCollator(pad_id=tokenizer.eos_token_id)(job.train_dataset[:3])
    batch.pop("labels")
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, reloaded(**batch).logits, atol=1e-6)


def test_dpo_step_prefers_chosen(tmp_path: Path, tokenizer, text_corpus) -> None:
    from transformers import set_seed

    set_seed(0)
    model = tiny_llama(tokenizer)
    pairs = []
    for line in text_corpus[:64]:
        prompt, answer = line.split(" bot : ")
        pairs.append({"prompt": prompt + " bot :", "chosen": " " + answer, "rejected": " no ."})
    config = TrainConfig(learning_rate=5e-3, epochs=3, batch_size=16, logging_steps=1, bf16=False, method="dpo",
                         dpo_beta=0.1, max_length=64)
    job = TrainingJob(model=model, tokenizer=tokenizer, train_dataset=pairs, config=config, ref_model=copy.deepcopy(model))
    summary = _train(tmp_path, job)
    losses = summary["losses"]
    assert losses[0] == pytest.approx(0.6931, abs=0.01)  # policy == reference at the start: -log sigmoid(0)
    assert losses[-1] < 0.6
    assert (tmp_path / "model.safetensors").is_file()


def test_seq2seq_sft_lowers_loss(tmp_path: Path, tokenizer, text_corpus) -> None:
    from transformers import BartConfig, BartForConditionalGeneration, set_seed

    set_seed(0)
    eos = tokenizer.eos_token_id
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                        pad_token_id=eos, bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=eos)
    rows = [encode_pair(tokenizer, *line.split(" bot : ")) for line in text_corpus]
    assert all(row["labels"][-1] == eos for row in rows)
    job = TrainingJob(model=BartForConditionalGeneration(config), tokenizer=tokenizer, train_dataset=rows,
                      config=TrainConfig(learning_rate=5e-3, epochs=2, batch_size=16, logging_steps=1, bf16=False, method="seq2seq"),
                      collator=PaddingCollator(pad_id=eos))
    losses = _train(tmp_path, job)["losses"]
    assert sum(losses[-3:]) / 3 < losses[0] * 0.7
