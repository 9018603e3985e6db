"""Loading models safely: dtype/device, adapters (merged or not), corrupt files, unsafe checkpoints."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from harness.errors import UserError
from harness.checkpoints.loader import clear_loaded, load_model
from tiny_lm import save_lora_adapter, save_tiny_llama

REPO = Path(__file__).resolve().parents[2]


def logits_of(model, text_ids=(5, 9, 17, 33, 2)):
    with torch.inference_mode():
        return model(torch.tensor([list(text_ids)])).logits[0].float()


def test_dtype_device_fingerprint_and_memo(tiny_llama_dir):
    clear_loaded()
    first = load_model(str(tiny_llama_dir), dtype="bfloat16", device="cpu")
    assert first.model.dtype == torch.bfloat16 and first.fingerprint.endswith("|bfloat16")
    assert first.info()["device"] == "cpu" and first.info()["kind"] == "causal"
    assert load_model(str(tiny_llama_dir), dtype="bfloat16", device="cpu") is first
    auto = load_model(str(tiny_llama_dir), dtype="auto", device="cpu")
    assert auto.dtype == "float32"  # CPU default: bfloat16 would change outputs, so it must be asked for
    with pytest.raises(UserError, match="--dtype 'int8'"):
        load_model(str(tiny_llama_dir), dtype="int8", device="cpu")


def test_adapter_applies_merges_and_is_fingerprinted(tiny_llama_dir, tmp_path):
    adapter = save_lora_adapter(tiny_llama_dir, tmp_path / "lora")
    base = load_model(str(tiny_llama_dir), dtype="float32", device="cpu")
    tuned = load_model(str(adapter), dtype="float32", device="cpu")
    merged = load_model(f"{adapter}+merge", dtype="float32", device="cpu")
    assert "+adapter=lora@sha256:" in tuned.fingerprint and merged.fingerprint.endswith("+merge|float32")
    assert tuned.fingerprint.startswith(base.fingerprint.split("|")[0])
    assert not torch.allclose(logits_of(base.model), logits_of(tuned.model), atol=1e-3)
    assert torch.allclose(logits_of(tuned.model), logits_of(merged.model), atol=1e-4)
    assert type(merged.model).__name__ == "LlamaForCausalLM"  # merged back into a plain model


def test_adapter_for_another_base_is_a_user_error(tiny_llama_dir, tmp_path):
    other = save_tiny_llama(tmp_path / "other", hidden=32)
    adapter = save_lora_adapter(other, tmp_path / "lora-other")
    with pytest.raises(UserError, match="adapter does not match base model"):
        load_model(f"{tiny_llama_dir}+adapter={adapter}", dtype="float32", device="cpu")


def test_corrupt_files_are_user_errors(tiny_llama_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_llama_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(UserError, match="model.safetensors: corrupt safetensors file"):
        load_model(str(broken), dtype="float32", device="cpu")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF" + os.urandom(256))
    with pytest.raises(UserError, match="fake.gguf: not a valid GGUF file"):
        load_model(str(fake), dtype="float32", device="cpu")


class _Payload:
    """Unpickling this runs a command: what a hostile checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_deepspeed_checkpoint_with_code_is_refused_without_running_it(tiny_llama_dir, tmp_path):
    checkpoint, marker = tmp_path / "zero", tmp_path / "pwned"
    (checkpoint / "global_step1").mkdir(parents=True)
    (checkpoint / "latest").write_text("global_step1")
    shutil.copy(tiny_llama_dir / "config.json", checkpoint / "config.json")
    torch.save({"module": _Payload(marker)}, checkpoint / "global_step1" / "mp_rank_00_model_states.pt")
    with pytest.raises(UserError, match="safe loading .* --trust-remote-code"):
        load_model(str(checkpoint), dtype="float32", device="cpu")
    assert not marker.exists()


ZERO_SCRIPT = textwrap.dedent('''
    import os, socket, sys, torch
    from safetensors.torch import save_file
    sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import deepspeed
    from transformers import AutoModelForCausalLM
    base, out, stage = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = AutoModelForCausalLM.from_pretrained(base)
    deepspeed.init_distributed("gloo")
    engine, *_ = deepspeed.initialize(model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
        config={"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": stage}, "steps_per_print": 10**9})
    ids = torch.randint(0, 200, (2, 12))
    loss = engine(input_ids=ids, labels=ids).loss
    engine.backward(loss)
    engine.step()
    engine.save_checkpoint(out)
    if stage < 3:
        save_file({k: v.detach().clone().contiguous() for k, v in engine.module.state_dict().items()
                   if k != "lm_head.weight"}, os.path.join(out, "expected.safetensors"))
''')


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_checkpoint_consolidates_to_fp32(tiny_llama_dir, tmp_path, stage):
    from safetensors.torch import load_file

    checkpoint = tmp_path / f"zero{stage}"
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(REPO / ".cache" / "torch_extensions"))
    subprocess.run([sys.executable, "-c", ZERO_SCRIPT, str(tiny_llama_dir), str(checkpoint), str(stage)],
                   check=True, env=env, capture_output=True, cwd=tmp_path)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_llama_dir / name, checkpoint / name)
    loaded = load_model(str(checkpoint), dtype="float32", device="cpu")
    assert "@zero:" in loaded.fingerprint and loaded.kind == "causal"
    base = load_model(str(tiny_llama_dir), dtype="float32", device="cpu")
    state = loaded.model.state_dict()
    assert not torch.equal(state["model.layers.0.self_attn.q_proj.weight"],
                           base.model.state_dict()["model.layers.0.self_attn.q_proj.weight"])  # trained a step
    if stage < 3:
        for name, tensor in load_file(str(checkpoint / "expected.safetensors")).items():
            assert torch.equal(state[name], tensor), name
    assert loaded.tokenizer("hello").input_ids


def test_prompt_tuning_adapter_generates_batch_invariantly(tiny_llama_dir, tmp_path):
    """Soft prompts shift positions, so such adapters take transformers' generate path, still batched."""
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from harness.generation import GenerationConfig, Generator
    from tiny_lm import chat_prompts

    tuned = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)),
                           PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    torch.nn.init.normal_(next(p for n, p in tuned.named_parameters() if "prompt_encoder" in n), std=1.0)
    tuned.save_pretrained(str(tmp_path / "soft"))
    loaded = load_model(str(tmp_path / "soft"), dtype="float32", device="cpu")
    prompts, cfg = chat_prompts(4), GenerationConfig(max_new_tokens=6)
    outputs = [Generator(loaded.model, loaded.tokenizer, fingerprint=loaded.fingerprint, batch_size=size,
                         progress=False).generate(prompts, cfg) for size in (1, 4)]
    assert outputs[0] == outputs[1]
    base = load_model(str(tiny_llama_dir), dtype="float32", device="cpu")
    plain = Generator(base.model, base.tokenizer, fingerprint=base.fingerprint, batch_size=4, progress=False)
    assert plain.generate(prompts, cfg) != outputs[0]  # the soft prompt is really applied
