"""`dialbench eval` end to end on a tiny model: run directory, warm re-run, user errors, kill -9 and resume."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parents[2]


def eval_args(model: Path | str, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(model), "--tasks", "convai2_persona", "--batch-size", "2",
            "--max-new-tokens", "8", "--output", str(out), "--cache", str(cache), *extra]


def test_eval_writes_run_directory_and_warm_rerun_generates_nothing(tiny_llama_dir, tmp_path, capsys):
    assert main(eval_args(tiny_llama_dir, tmp_path / "cold", tmp_path / "gen.sqlite", "--limit", "6")) == 0
    table = capsys.readouterr().out
    assert "zero_shot_lm" in table
    results = json.loads((tmp_path / "cold" / "results.json").read_text())["results"]["convai2_persona"]
    assert results["ppl"] > 1
    config = json.loads((tmp_path / "cold" / "config.json").read_text())
    system = config["task_runs"]["convai2_persona"]["system"]
    assert system["fingerprint"].endswith("|float32") and system["device"] == "cpu"
    assert system["engine_stats"]["generate_computed"] == 6
    samples = [json.loads(line) for line in (tmp_path / "cold" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and all(s["ref_tokens"] > 1 and s["ref_nll"] > 0 for s in samples)

    assert main(eval_args(tiny_llama_dir, tmp_path / "warm", tmp_path / "gen.sqlite", "--limit", "6")) == 0
    warm = json.loads((tmp_path / "warm" / "config.json").read_text())["task_runs"]["convai2_persona"]["system"]
    assert warm["engine_stats"].get("generate_computed", 0) == 0 and warm["engine_stats"]["generate_cached"] == 6
    # nothing to compute, so the model was never loaded: its source is described from the spec alone
    assert set(warm["model"]) <= {"source", "dtype", "quantisation"} and set(system["model"]) != set(warm["model"])
    assert json.loads((tmp_path / "warm" / "results.json").read_text())["results"]["convai2_persona"] == results


def test_same_command_resumes_its_default_directory_unless_weights_change(tiny_llama_dir, tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, model)
    monkeypatch.chdir(tmp_path)
    args = ["eval", "--model", str(model), "--tasks", "convai2_persona", "--limit", "3", "--max-new-tokens", "4",
            "--cache", str(tmp_path / "gen.sqlite")]
    assert main(args) == 0
    first = capsys.readouterr()
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and "zero_shot_lm on convai2_persona" in first.err
    assert main(args) == 0
    again = capsys.readouterr()
    assert list((tmp_path / "runs").iterdir()) == runs and "zero_shot_lm on convai2_persona" not in again.err
    assert again.out == first.out  # same table, nothing re-run
    from safetensors.torch import load_file, save_file

    weights = load_file(str(model / "model.safetensors"))
    save_file({k: v * 1.01 for k, v in weights.items()}, str(model / "model.safetensors"))  # "retrained"
    assert main(args + ["--output", str(runs[0])]) == 0
    retrained = capsys.readouterr()
    assert "other weights" in retrained.err and "zero_shot_lm on convai2_persona" in retrained.err


@pytest.mark.parametrize("problem", ["missing", "fake_gguf", "truncated_safetensors", "adapter_mismatch",
                                     "batch_size", "stray_data"])
def test_eval_user_errors_exit_2_with_one_line(problem, tiny_llama_dir, tmp_path, capsys):
    model, extra = str(tiny_llama_dir), []
    if problem == "missing":
        model = str(tmp_path / "no-such-model")
    elif problem == "fake_gguf":
        model = str(tmp_path / "fake.gguf")
        Path(model).write_bytes(b"GGUF" + os.urandom(64))
    elif problem == "truncated_safetensors":
        shutil.copytree(tiny_llama_dir, tmp_path / "broken")
        weights = tmp_path / "broken" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
        model = str(tmp_path / "broken")
    elif problem == "adapter_mismatch":
        from tiny_lm import save_lora_adapter, save_tiny_llama

        adapter = save_lora_adapter(save_tiny_llama(tmp_path / "other", hidden=32), tmp_path / "lora")
        model = f"{tiny_llama_dir}+adapter={adapter}"
    elif problem == "batch_size":
        extra = ["--batch-size", "0"]
    elif problem == "stray_data":
        extra = ["--data", f"esconv_strategy={tiny_llama_dir / 'config.json'}"]
    args = eval_args(model, tmp_path / "run", tmp_path / "gen.sqlite", "--limit", "2")
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dialbench: error: ") and "Traceback" not in "\n".join(err)
    expected = {"missing": "model path not found", "fake_gguf": "not a valid GGUF file",
                "truncated_safetensors": "corrupt safetensors file", "adapter_mismatch": "adapter does not match",
                "batch_size": "--batch-size must be", "stray_data": "not in --tasks"}[problem]
    assert expected in err[-1]


def cached_rows(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return dict(db.execute("SELECT key, created FROM outputs WHERE kind = 'generate'"))
    except sqlite3.OperationalError:  # table not created yet
        return {}


@pytest.mark.slow
def test_kill_9_mid_run_resumes_without_regenerating(tiny_llama_dir, tmp_path):
    """A real `dialbench eval` is SIGKILLed mid-way; the re-run regenerates only unfinished batches."""
    env = dict(os.environ, DIALBENCH_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    command = [sys.executable, "-m", "harness", *eval_args(tiny_llama_dir, tmp_path / "run", tmp_path / "gen.sqlite"),
               "--max-new-tokens", "48"]
    reference = [sys.executable, "-m", "harness", *eval_args(tiny_llama_dir, tmp_path / "ref", tmp_path / "ref.sqlite"),
                 "--max-new-tokens", "48"]
    subprocess.run(reference, env=env, cwd=REPO, check=True, capture_output=True)
    total = len(cached_rows(tmp_path / "ref.sqlite"))
    assert total == 16

    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(cached_rows(tmp_path / "gen.sqlite")) < 4 and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    before_kill = cached_rows(tmp_path / "gen.sqlite")
    assert 4 <= len(before_kill) < total and len(before_kill) % 2 == 0  # whole batches only

    resumed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    done = f"{total} requests, {len(before_kill)} cached, {total - len(before_kill)} computed"
    assert f"generate: {done}" in resumed.stderr
    after = cached_rows(tmp_path / "gen.sqlite")
    assert all(after[key] == created for key, created in before_kill.items())  # finished rows untouched
    def engine_outputs(run: Path) -> list[tuple]:
        rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        return [(r["example_id"], r["output"], r["ref_nll"], r["ref_tokens"]) for r in rows]

    assert engine_outputs(tmp_path / "run") == engine_outputs(tmp_path / "ref")  # bit-identical texts and NLLs
    results = json.loads((tmp_path / "run" / "results.json").read_text())["results"]["convai2_persona"]
    expected = json.loads((tmp_path / "ref" / "results.json").read_text())["results"]["convai2_persona"]
    assert results.keys() == expected.keys()
    for metric, value in expected.items():
        # BERTScore (harness/metrics) can move in the 9th digit between processes on identical inputs
        assert results[metric] == (pytest.approx(value, rel=1e-7) if metric.startswith("BERT") else value), metric


@pytest.mark.slow
def test_embedded_smollm2_eval_and_batch_invariance(tmp_path, monkeypatch, capsys):
    """The README command on the real model (bundled sample), and greedy batch 1 == 16 on SmolLM2."""
    monkeypatch.delenv("DIALBENCH_CACHE")  # reuse the user's converted SmolLM2 instead of converting again
    from harness.generation import GenerationConfig, Generator
    from harness.checkpoints.loader import load_model
    from harness.plugins import TASKS

    args = ["eval", "--model", "embedded:smollm2-135m-instruct", "--tasks", "convai2_persona", "--limit", "4",
            "--max-new-tokens", "16", "--output", str(tmp_path / "run"), "--no-cache"]
    assert main(args) == 0
    assert "ppl" in json.loads((tmp_path / "run" / "results.json").read_text())["results"]["convai2_persona"]
    assert "smollm2" in capsys.readouterr().out.lower()

    loaded = load_model("embedded:smollm2-135m-instruct", dtype="float32", device="cpu")
    task = TASKS.get("convai2_persona")()
    prompts = [task.prompt(e) for e in task.build_examples(task.load(task.sample_path("test")))]
    cfg = GenerationConfig(max_new_tokens=16)
    outputs = {}
    for size in (1, 16):
        gen = Generator(loaded.model, loaded.tokenizer, fingerprint=loaded.fingerprint, batch_size=size, progress=False)
        outputs[size] = gen.generate(prompts, cfg)
    assert outputs[1] == outputs[16] and len(set(outputs[1])) > len(prompts) // 2


def test_zero_shot_lm_passes_its_beam_options_to_the_engine(tiny_llama_dir):
    from baselines.zero_shot_lm import ZeroShotLMSystem
    from harness.errors import UserError
    from harness.plugins import TASKS

    task = TASKS.get("convai2_persona")()
    system = ZeroShotLMSystem(task, model=str(tiny_llama_dir), num_beams="3", length_penalty="1.5",
                              no_repeat_ngram_size="2", no_cache="true", progress="false")
    assert (system.config.num_beams, system.config.length_penalty, system.config.no_repeat_ngram_size) == (3, 1.5, 2)
    with pytest.raises(UserError, match="no_repeat_ngram_size must be >= 0"):
        ZeroShotLMSystem(task, model=str(tiny_llama_dir), no_repeat_ngram_size="-2", no_cache="true")
