"""Bad MemoryBank inputs end as one ``PATH:LINE: field: problem`` line with exit status 2, and the
input store is never modified by an evaluation (summaries and strengths go to the system's copy)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from harness.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "tasks" / "samples" / "memorybank_probe.test.cn"
LOCATED = re.compile(r"^dialbench: error: (?P<path>\S+):(?P<line>\d+): (?P<field>[^:]+): (?P<problem>.+)$")


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    shutil.copytree(SAMPLE, folder)
    return folder


def _eval(folder: Path, capsys, tmp_path: Path) -> tuple[int, str]:
    code = main(["eval", "--system", "memorybank", "--tasks", "memorybank_probe", "--data", f"memorybank_probe={folder}",
                 "--output", str(tmp_path / "run"), "--set", "progress=false"])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_unparseable_store_date_names_path_line_and_field(tmp_path, capsys):
    folder = _copy(tmp_path)
    store = folder / "memory_bank_cn.json"
    text = store.read_text(encoding="utf-8")
    first_date = re.search(r'"(\d{4}-\d{2}-\d{2})"', text).group(1)
    store.write_text(text.replace(f'"{first_date}"', '"2023-13-45"', 1), encoding="utf-8")
    code, line = _eval(folder, capsys, tmp_path)
    match = LOCATED.match(line)
    assert code == 2 and match, line
    assert match["path"].endswith("memory_bank_cn.json") and "history" in match["field"]
    assert int(match["line"]) == text[: text.index(f'"{first_date}"')].count("\n") + 1


def test_probe_naming_an_unknown_user(tmp_path, capsys):
    folder = _copy(tmp_path)
    questions = folder / "probing_questions_cn.jsonl"
    questions.write_text(questions.read_text(encoding="utf-8") + json.dumps({"Nobody": ["Who am I?"]}) + "\n", encoding="utf-8")
    code, line = _eval(folder, capsys, tmp_path)
    match = LOCATED.match(line)
    assert code == 2 and match, line
    assert match["path"].endswith("probing_questions_cn.jsonl") and match["field"] == "user"
    assert int(match["line"]) == len(questions.read_text(encoding="utf-8").splitlines())


def test_gold_key_pointing_at_a_missing_exchange(tmp_path, capsys):
    folder = _copy(tmp_path)
    gold = folder / "memorybank_cn_gold.jsonl"
    rows = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines()]
    rows[1]["evidence"][0]["turn"] = 999
    gold.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    code, line = _eval(folder, capsys, tmp_path)
    match = LOCATED.match(line)
    assert code == 2 and match, line
    assert match["path"].endswith("memorybank_cn_gold.jsonl") and match["line"] == "2"
    assert match["field"] == "evidence[0].turn" and "out of range" in match["problem"]


def test_bad_option_values_are_one_line(tmp_path, capsys):
    code = main(["eval", "--system", "memorybank", "--tasks", "memorybank_probe", "--output", str(tmp_path / "r"),
                 "--set", "retrieval=fancy"])
    assert code == 2
    assert "retrieval: 'fancy' is not one of hybrid, released" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluation_with_forgetting_leaves_the_input_store_unchanged(tmp_path, capsys, tiny_llama_dir):
    folder = _copy(tmp_path)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    code = main(["eval", "--system", "memorybank", "--model", str(tiny_llama_dir), "--tasks", "memorybank_probe",
                 "--data", f"memorybank_probe={folder}", "--output", str(tmp_path / "run"), "--max-new-tokens", "4",
                 "--set", "forgetting=released", "--set", "progress=false"])
    assert code == 0, capsys.readouterr().err
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == digests
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    system = next(iter(config["task_runs"].values()))["system"]
    assert system["forgetting"] == "released" and system["retrieval"]["mode"] == "hybrid"
