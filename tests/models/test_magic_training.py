"""MAGIC training: staged recipe, schedule switch, bank restore, paper code paths, bad input on the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from tests.models.magic_helpers import bart_tokenizer, write_multiesc
from training.config import Preset, TrainConfig
from training.recipe import TrainingData


def small_response_preset(**train) -> Preset:
    settings = dict(learning_rate=3e-3, epochs=2, batch_size=8, schedule="linear", weight_decay=0.01, logging_steps=1,
                    bf16=False, cpu_threads=1)
    settings.update(train)
    return Preset(name="test", description="unit-test size", train=TrainConfig(**settings),
                  model={"d_model": 32, "layers": 1, "heads": 2, "ffn_dim": 64, "vocab_size": 300, "max_positions": 128,
                         "standard_decoding": {"length_penalty": 1.3, "no_repeat_ngram_size": 3}},
                  data={"max_source": 96, "max_target": 24, "memory_length": 16, "max_motivation": 16, "train_fraction": 0.8})


def _train_response(tmp_path: Path, options: dict, **train):
    from models.magic.response_recipe import MagicResponseRecipe
    from training.run import _train_recipe

    data = TrainingData(train={"esconv_strategy": write_multiesc(tmp_path / "train.txt", 10)})
    recipe = MagicResponseRecipe()
    recipe.configure(options)
    summary = _train_recipe("magic", recipe, small_response_preset(**train), data, tmp_path / "out", deepspeed=None,
                            resume=False, max_steps=None, seed=0, base=None, settings={}, report_to=())
    return summary, tmp_path / "out"


def test_response_training_learns_saves_banks_and_released_schedule_is_per_epoch(tmp_path):
    from models.magic.checkpoint import load_response_model

    summary, out = _train_response(tmp_path, {"scheduler": "per_epoch", "motivation": "encoded"})
    losses = summary["losses"]
    assert losses[-1] < losses[0]
    model, _ = load_response_model(out)
    assert sum(model.bank.sizes()) > 0 and model.config.motivation == "encoded"
    recipe_meta = json.loads((out / "dialbench_training.json").read_text())["recipe"]
    assert recipe_meta["standard_decoding"] == {"length_penalty": 1.3, "no_repeat_ngram_size": 3}  # for magic.json
    state = json.loads((out / "checkpoints" / sorted(p.name for p in (out / "checkpoints").iterdir())[-1] / "trainer_state.json").read_text())
    rates = [entry["learning_rate"] for entry in state["log_history"] if "learning_rate" in entry]
    steps_per_epoch = summary["global_step"] // 2
    assert len(set(rates[:steps_per_epoch])) == 1 and rates[steps_per_epoch] < rates[0]  # one step per epoch


@pytest.mark.slow
def test_paper_presets_run_two_steps_with_tiny_llama_and_bart(tmp_path):
    """The paper presets' code paths (LoRA on q/v of a Llama, bart-base weights copied into both encoders
    and the decoder, full prompts, 512-token sources) for two steps, then inference with both models."""
    from transformers import BartConfig, BartModel, LlamaConfig, LlamaForCausalLM

    from harness.records import Example
    from harness.runner import load_examples
    from models.magic.system import MagicSystem
    from tasks.esconv import ESConvStrategyTask
    from training.run import train

    tokenizer = bart_tokenizer()
    llama_dir, bart_dir = tmp_path / "llama", tmp_path / "bart"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                 bos_token_id=tokenizer.bos_token_id)).save_pretrained(llama_dir)
    BartModel(BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                         max_position_embeddings=520, pad_token_id=tokenizer.pad_token_id)).save_pretrained(bart_dir)
    for folder in (llama_dir, bart_dir):
        tokenizer.save_pretrained(folder)
    data_file = write_multiesc(tmp_path / "train.txt", 6)
    out = tmp_path / "magic"
    summary = train("magic", TrainingData(train={"esconv_strategy": data_file}), out, preset="paper", max_steps=2,
                    overrides={"strategy_base": str(llama_dir), "response_base": str(bart_dir), "batch_size": 4,
                               "strategy.grad_accum": 1, "bf16": False}, report_to=())
    assert summary["stages"]["strategy"]["global_step"] == 2 and summary["stages"]["response"]["global_step"] == 2
    info = json.loads((out / "magic.json").read_text())
    assert info["strategy_base"] == str(llama_dir) and info["features"]["max_source"] == 512
    assert info["standard_decoding"] == {}  # the paper preset decodes with MAGIC's README settings
    adapter = json.loads((out / "strategy" / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    task = ESConvStrategyTask(protocol="last", expand_contractions=True)
    examples: list[Example] = load_examples(task, data_file, None, limit=2)
    system = MagicSystem(task, model=str(out), no_cache=True, strategy_max_new_tokens=4, max_new_tokens=4,
                         num_beams=2, progress=False)
    responses = system.respond(examples)
    assert [r.example_id for r in responses] == [e.id for e in examples]
    assert all(r.label in ("Question", "Restatement or Paraphrasing", "Reflection of feelings", "Self-disclosure",
                           "Affirmation and Reassurance", "Providing Suggestions or Information", "Greeting", "Others")
               for r in responses)
    assert all(r.ref_nll is not None and r.ref_tokens for r in responses)
    system.close()


def _cli(capsys, *argv):
    """Return (exit code, stderr without the runner's '[dialbench] ...' progress lines)."""
    code = main(list(argv))
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("[dialbench]")]
    return code, "\n".join(lines)


def test_bad_inputs_end_with_one_line_and_exit_2(capsys, tmp_path):
    data = write_multiesc(tmp_path / "train.txt", 5)
    motivations = tmp_path / "motivations.json"
    motivations.write_text(json.dumps(["too few"]), encoding="utf-8")
    code, err = _cli(capsys, "train", "magic", "--data", f"esconv_strategy={data}", "--output", str(tmp_path / "o1"),
                     "--set", f"motivations={motivations}", "--set", "parts=response")
    assert code == 2 and "holds 1 motivations but the training split has" in err and len(err.splitlines()) == 1
    bad = tmp_path / "bad.txt"
    bad.write_text(data.read_text().replace('"strategy": "Question"', '"strategy": "Humour"', 1), encoding="utf-8")
    code, err = _cli(capsys, "train", "magic", "--data", f"esconv_strategy={bad}", "--output", str(tmp_path / "o2"),
                     "--set", "parts=response")
    assert code == 2 and "unknown strategy 'Humour'" in err and str(bad) in err and len(err.splitlines()) == 1
    code, err = _cli(capsys, "train", "magic", "--data", f"esconv_strategy={data}", "--output", str(tmp_path / "o3"),
                     "--set", "scheduler=hourly", "--set", "parts=response")
    assert code == 2 and "scheduler" in err and len(err.splitlines()) == 1
    # a checkpoint without its strategy bank
    from tests.models.magic_helpers import tiny_magic

    folder = tmp_path / "nobank"
    tokenizer = bart_tokenizer()
    tiny_magic(tokenizer).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    (folder / "memory_bank.safetensors").unlink()
    capsys.readouterr()  # the setup's save progress bars are not part of the command's output
    code, err = _cli(capsys, "eval", "--model", str(folder), "--system", "magic", "--tasks", "esconv_strategy",
                     "--data", f"esconv_strategy={data}", "--set", "strategy=gold", "--no-cache",
                     "--output", str(tmp_path / "r"))
    assert code == 2 and "strategy bank missing" in err and len(err.splitlines()) == 1
    code, err = _cli(capsys, "eval", "--model", str(tmp_path), "--system", "magic", "--tasks", "esconv_strategy",
                     "--data", f"esconv_strategy={data}", "--set", "decoding=greedy", "--output", str(tmp_path / "r2"))
    assert code == 2 and len(err.splitlines()) == 1
