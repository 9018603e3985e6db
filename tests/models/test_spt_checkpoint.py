"""SPT checkpoints: the dialbench layout round trip and released DeepSpeed ``ds_ckpt`` folders loaded safely."""
from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest
import torch

from harness.errors import UserError

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["i like to swim in the sea", "my dog is named max", "what do you do for a living", "i am a chef"] * 5


class Hostile:
    """Unpickling this would run a shell command: a safe loader must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def tiny_opt_folder(folder: Path) -> Path:
    from transformers import AutoModelForCausalLM, OPTConfig

    from training.tokenizer import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(TEXTS, vocab_size=300)
    config = OPTConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128,
                       max_position_embeddings=600, word_embed_proj_dim=64, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def released_folder(root: Path, base: Path, extra: dict | None = None) -> Path:
    """Write the released layout: ds_ckpt/{latest, best/mp_rank_00_model_states.pt} + the training yml."""
    ds = root / "OPT-tiny-SPT" / "ds_ckpt"
    (ds / "best").mkdir(parents=True)
    (ds / "latest").write_text("best")
    module = collections.OrderedDict()
    torch.manual_seed(3)
    for k in range(4):
        module[f"models.{k}.prompt_encoder.default.embedding.weight"] = torch.randn(8, 64)
        module[f"models.{k}.word_embeddings.weight"] = torch.zeros(5, 64)  # frozen alias that survives
    module["prompt_normalizer.weight"] = torch.eye(64)
    module["prompt_normalizer.bias"] = torch.zeros(64)
    module["model.lm_head.0.weight"] = torch.zeros(5, 64)
    state = {"module": module, "buffer_names": [], "optimizer": None, "param_shapes": [collections.OrderedDict()],
             "shared_params": {}, "lr_scheduler": None, "sparse_tensor_module_names": set(), "global_steps": 7,
             "ds_version": "0.12.6", **(extra or {})}
    torch.save(state, str(ds / "best" / "mp_rank_00_model_states.pt"))
    (ds.parent / "opt-tiny-selective-linear-both-prompt-causal-convai2.yml").write_text(
        f"model:\n  model_name: {base}\n  load_bit: 32\ntraining:\n  lr: 1.0e-5\n", encoding="utf-8")
    return ds


def test_released_ds_ckpt_consolidates_and_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.plugins import TASKS
    from models.spt.system import SPTSystem

    monkeypatch.setenv("DIALBENCH_CACHE", str(tmp_path / "cache"))
    base = tiny_opt_folder(tmp_path / "opt-tiny")
    ds = released_folder(tmp_path, base)
    task = TASKS.get("convai2_persona")()
    examples = task.build_examples(task.load(REPO / "tasks" / "samples" / "convai2_persona.test.txt"))[:4]
    system = SPTSystem(task, model=str(ds), no_cache=True, max_new_tokens=3)
    assert system.released and system.config.num_prompts == 4 and system.config.num_virtual_tokens == 8
    saved = torch.load(str(ds / "best" / "mp_rank_00_model_states.pt"), weights_only=True)["module"]
    assert torch.equal(system.model.prompts[2], saved["models.2.prompt_encoder.default.embedding.weight"])
    assert torch.equal(system.model.normalizer.weight, torch.eye(64))
    responses = system.respond(examples)
    assert len(responses) == 4 and {r.meta["spt_prompt"] for r in responses} <= {0, 1, 2, 3}
    system.close()


def test_released_checkpoint_with_code_in_its_pickle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.spt.checkpoint import consolidate_released

    monkeypatch.setenv("DIALBENCH_CACHE", str(tmp_path / "cache"))
    ds = released_folder(tmp_path, tmp_path / "missing-base", extra={"payload": Hostile()})
    with pytest.raises(UserError, match="safe loading refuses"):
        consolidate_released(ds)


def test_released_checkpoint_without_prompts_or_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.spt.checkpoint import consolidate_released

    monkeypatch.setenv("DIALBENCH_CACHE", str(tmp_path / "cache"))
    ds = released_folder(tmp_path, tmp_path / "b")
    (ds.parent / "opt-tiny-selective-linear-both-prompt-causal-convai2.yml").unlink()
    with pytest.raises(UserError, match="no base model"):
        consolidate_released(ds)
    empty = tmp_path / "other" / "ds_ckpt"
    (empty / "best").mkdir(parents=True)
    (empty / "latest").write_text("best")
    torch.save({"module": {"model.x": torch.zeros(1)}}, str(empty / "best" / "mp_rank_00_model_states.pt"))
    with pytest.raises(UserError, match="not an SPT checkpoint"):
        consolidate_released(empty, base="x")


def test_dialbench_checkpoint_round_trip(tmp_path: Path) -> None:
    from models.spt import checkpoint
    from models.spt.config import SPTConfig
    from models.spt.model import SPTModel, load_spt
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = tiny_opt_folder(tmp_path / "base-src")
    base = AutoModelForCausalLM.from_pretrained(str(base_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = SPTModel(base, SPTConfig(base=str(base_dir), num_prompts=3, num_virtual_tokens=2, pooling="released"),
                     tokenizer.pad_token_id)
    checkpoint.save(model, tokenizer, tmp_path / "ckpt")
    loaded, _ = load_spt(tmp_path / "ckpt")
    assert torch.equal(loaded.prompts, model.prompts.detach())
    assert torch.equal(loaded.normalizer.weight, model.normalizer.weight.detach())
    assert loaded.spt == model.spt
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    with pytest.raises(UserError, match="not an SPT checkpoint"):
        checkpoint.read_config(tmp_path / "foreign")
