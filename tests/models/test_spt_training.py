"""SPT training end to end on CPU: the paper presets' code paths with random-init tiny OPT and Llama bases,
--max-steps 0, checkpoint round trip into the system, and the bad-input cases (one line, exit 2)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from harness.errors import UserError
from models.spt.recipe import PRESETS
from training.recipe import TrainingData

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tasks" / "samples" / "convai2_persona.train.txt"
TEST_SAMPLE = REPO / "tasks" / "samples" / "convai2_persona.test.txt"
TINY_ARCH = {
    "opt": {"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 128,
            "word_embed_proj_dim": 64, "max_position_embeddings": 600, "vocab_size": 400},
    "llama": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 600, "vocab_size": 400},
}


def tiny_paper(name: str, kind: str):
    preset = PRESETS[name]
    return replace(preset, model={**preset.model, "random_init": TINY_ARCH[kind], "dtype": "float32"},
                   train=replace(preset.train, logging_steps=1, cpu_threads=1))


@pytest.mark.slow
@pytest.mark.parametrize("name,kind", [("paper-opt-125m", "opt"), ("paper-llama2-7b-chat", "llama"),
                                       ("paper-opt-1.3b-pt", "opt")])
def test_paper_presets_train_two_steps_and_reload(tmp_path: Path, name: str, kind: str) -> None:
    from harness.plugins import TASKS
    from models.spt.system import SPTSystem
    from training.run import train

    out = tmp_path / "run"
    preset = tiny_paper(name, kind)
    summary = train("spt", TrainingData(train={"convai2_persona": SAMPLE}), out, preset=preset, max_steps=2,
                    report_to=(), overrides={"spt.train_fraction": 0.5})
    assert summary["global_step"] == 2
    assert all(loss == loss for loss in summary["losses"])  # finite, not NaN
    evals = summary["evaluations"]
    assert evals and all(e["eval_ppl"] == pytest.approx(math.exp(e["eval_loss_nll"])) for e in evals)
    # ppl is from the NLL, not the whole objective; with no extra terms (prompt tuning) the two are the same
    # mean summed in another order, so equal only to float rounding
    assert all(e["eval_loss_nll"] <= e["eval_loss"] + 1e-5 for e in evals)
    assert (out / "spt.safetensors").is_file() and (out / "base" / "config.json").is_file()
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["spt"]["num_virtual_tokens"] == preset.model["spt"]["num_virtual_tokens"]
    meta = json.loads((out / "dialbench_training.json").read_text())
    assert meta["recipe"]["quirks"]["pooling"] == "tokens"
    task = TASKS.get("convai2_persona")()
    examples = task.build_examples(task.load(TEST_SAMPLE))[:3]
    system = SPTSystem(task, model=str(out), no_cache=True, max_new_tokens=4)
    responses = system.respond(examples)
    assert len(responses) == 3 and all(r.ref_tokens for r in responses)
    assert system.info()["quirks"]["contrastive_text"] == "context"
    system.close()


@pytest.mark.slow
def test_trained_prompts_differ_from_untrained(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from training.run import train

    preset = tiny_paper("paper-llama2-7b-chat", "llama")
    data = TrainingData(train={"convai2_persona": SAMPLE})
    train("spt", data, tmp_path / "zero", preset=preset, max_steps=0, report_to=())
    train("spt", data, tmp_path / "two", preset=preset, max_steps=2, report_to=(),
          overrides={"learning_rate": 0.1, "spt.train_fraction": 1.0})
    before, after = load_file(str(tmp_path / "zero" / "spt.safetensors")), load_file(str(tmp_path / "two" / "spt.safetensors"))
    assert torch.allclose(before["prompts"], load_file(str(tmp_path / "zero" / "spt.safetensors"))["prompts"])
    assert not torch.allclose(before["prompts"], after["prompts"])
    assert before["prompts"].shape == (4, 1, 64)


def test_quirk_switches_reach_the_model(tmp_path: Path) -> None:
    from training.run import train

    preset = tiny_paper("paper-opt-125m", "opt")
    train("spt", TrainingData(train={"convai2_persona": SAMPLE}), tmp_path, preset=preset, max_steps=0, report_to=(),
          overrides={"spt.pooling": "released", "spt.contrastive_text": "persona", "spt.num_prompts": 3})
    config = json.loads((tmp_path / "adapter_config.json").read_text())["spt"]
    assert (config["pooling"], config["contrastive_text"], config["num_prompts"]) == ("released", "persona", 3)


@pytest.mark.parametrize("overrides,message", [
    ({"spt.num_prompts": 0}, r"num_prompts \(K\) must be at least 1"),
    ({"spt.pooling": "sideways"}, "spt.pooling"),
    ({"spt.bogus": 1}, "unknown option 'bogus'"),
    ({"spt.holdout_last": 99}, "leaves no training dialogue"),
])
def test_bad_training_settings_are_user_errors(tmp_path: Path, overrides: dict, message: str) -> None:
    from training.run import train

    with pytest.raises(UserError, match=message):
        train("spt", TrainingData(train={"convai2_persona": SAMPLE}), tmp_path, preset=tiny_paper("paper-opt-125m", "opt"),
              max_steps=0, report_to=(), overrides=overrides)


def test_training_file_without_targets(tmp_path: Path) -> None:
    from training.run import train

    empty = tmp_path / "personas_only.txt"
    empty.write_text("1 your persona: i like tea.\n2 your persona: i have a cat.\n", encoding="utf-8")
    with pytest.raises(UserError, match="personas_only.txt") as caught:  # the task loader names file and line
        train("spt", TrainingData(train={"convai2_persona": empty}), tmp_path / "out",
              preset=tiny_paper("paper-opt-125m", "opt"), max_steps=0, report_to=())
    assert "\n" not in str(caught.value)
    silent = tmp_path / "silent.txt"  # parses, but no bot reply has text: the recipe's own check
    silent.write_text("1 your persona: i like tea.\n2 hello there\t \n", encoding="utf-8")
    try:
        train("spt", TrainingData(train={"convai2_persona": silent}), tmp_path / "out2",
              preset=tiny_paper("paper-opt-125m", "opt"), max_steps=0, report_to=())
    except UserError as err:
        assert "silent.txt" in str(err)
    else:
        pytest.fail("a file without any bot reply text trained")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})


@pytest.mark.slow
def test_cli_bad_inputs_exit_2_with_one_line(tmp_path: Path) -> None:
    unknown = run_cli("train", "spt", "--preset", "tiny", "--base", "/no/such/base", "--max-steps", "0",
                      "--data", f"convai2_persona={SAMPLE}", "--output", str(tmp_path / "a"))
    assert unknown.returncode == 2 and "/no/such/base" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    k0 = run_cli("train", "spt", "--preset", "tiny", "--set", "spt.num_prompts=0", "--max-steps", "0",
                 "--data", f"convai2_persona={SAMPLE}", "--output", str(tmp_path / "b"))
    assert k0.returncode == 2 and len(k0.stderr.strip().splitlines()) == 1 and "num_prompts" in k0.stderr


@pytest.mark.slow
def test_checkpoint_with_wrong_prompt_width_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from harness.plugins import TASKS
    from models.spt.system import SPTSystem
    from training.run import train

    train("spt", TrainingData(train={"convai2_persona": SAMPLE}), tmp_path, preset=tiny_paper("paper-opt-125m", "opt"),
          max_steps=0, report_to=())
    tensors = load_file(str(tmp_path / "spt.safetensors"))
    tensors["prompts"] = torch.zeros(4, 8, 32)
    save_file(tensors, str(tmp_path / "spt.safetensors"))
    with pytest.raises(UserError, match="prompt width 32 vs embedding width 64"):
        SPTSystem(TASKS.get("convai2_persona")(), model=str(tmp_path), no_cache=True)
    result = run_cli("eval", "--model", str(tmp_path), "--system", "spt", "--tasks", "convai2_persona",
                     "--no-cache", "--output", str(tmp_path / "eval"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "prompt width 32 vs embedding width 64" in result.stderr.strip().splitlines()[-1]  # after the runner's progress
