"""``dialbench train``: bad input ends with one line on stderr and exit status 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from training.run import META_FILE


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["train", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("argv, message", [
    (["nope", "--data", "convai2_persona={data}"], "unknown system 'nope'"),
    (["copy_last", "--data", "convai2_persona={data}"], "has no training recipe"),
    (["gpt2_dialogue", "--preset", "huge", "--data", "convai2_persona={data}"], "unknown preset for 'gpt2_dialogue' 'huge'"),
    (["gpt2_dialogue"], "needs --data"),
    (["gpt2_dialogue", "--data", "esconv_strategy={data}"], "cannot train on task 'esconv_strategy'"),
    (["gpt2_dialogue", "--data", "convai2_persona={missing}"], "file not found"),
    (["gpt2_dialogue", "--data", "convai2_persona={data}", "--deepspeed", "zero9"], "neither zero2 nor zero3"),
    (["gpt2_dialogue", "--data", "convai2_persona={data}", "--set", "learning_rat=1"], "unknown training setting"),
    (["gpt2_dialogue", "--data", "convai2_persona={data}", "--max-steps", "-1"], "--max-steps"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path: Path, convai2_file: Path, argv, message) -> None:
    argv = [a.format(data=convai2_file, missing=tmp_path / "missing.txt") for a in argv]
    code, err = _run(capsys, *argv, "--output", str(tmp_path / "out"))
    assert code == 2
    assert message in err and len(err.splitlines()) == 1


def test_unparsable_deepspeed_config_names_the_line(capsys, tmp_path: Path, convai2_file: Path) -> None:
    config = tmp_path / "ds.json"
    config.write_text('{\n  "zero_optimization": {"stage": 2},\n  "bf16": {enabled: true}\n}\n')
    code, err = _run(capsys, "gpt2_dialogue", "--data", f"convai2_persona={convai2_file}", "--deepspeed", str(config))
    assert code == 2 and f"{config}:3: deepspeed config: invalid JSON" in err


def test_data_without_targets_is_refused(capsys, tmp_path: Path) -> None:
    data = tmp_path / "bot_speaks_first.txt"  # the partner's silence is dropped: no reply follows an utterance
    data.write_text("1 your persona: i like cats.\n2 __ SILENCE __\thi , i like cats .\n")
    code, err = _run(capsys, "gpt2_dialogue", "--data", f"convai2_persona={data}", "--output", str(tmp_path / "out"))
    assert code == 2 and "no training targets" in err


def test_max_steps_zero_from_the_command_line(capsys, tmp_path: Path, convai2_file: Path) -> None:
    out = tmp_path / "untrained"
    code = main(["train", "gpt2_dialogue", "--data", f"convai2_persona={convai2_file}", "--output", str(out), "--max-steps", "0"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["global_step"] == 0
    meta = json.loads((out / META_FILE).read_text())
    assert meta["preset"]["name"] == "tiny" and meta["recipe"]["train_dialogues"] == 34
