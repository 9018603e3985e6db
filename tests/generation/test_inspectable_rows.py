"""samples.jsonl rows show what was asked, generated and scored; memory evidence is the system's own."""
from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.plugins import SYSTEMS
from harness.records import Response
from harness.runner import SystemSpec, TaskSpec, run_system
from harness.system import System


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def prompted(tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("prompted")
    args = ["eval", "--model", str(tiny_llama_dir), "--tasks", "memorybank_probe,esconv_strategy", "--limit", "3",
            "--max-new-tokens", "4", "--batch-size", "4", "--output", str(out / "run"), "--cache", str(out / "g.sqlite"),
            "--profile", "esconv_strategy=basic"]
    assert main(args) == 0
    return out / "run"


def test_rows_carry_prompt_raw_output_and_scored_hypothesis(prompted):
    esconv = [r for r in rows(prompted) if r["task"] == "esconv_strategy"]
    for row in esconv:
        assert row["prompt"][0]["role"] == "system" and row["prompt"][-1]["role"] == "user"
        assert isinstance(row["raw_output"], str) and len(row["generation_key"]) == 64
        assert row["hypothesis"] == row["output"]  # basic has no hypothesis steps


def test_memory_rows_store_the_memory_text_the_model_saw_and_no_retrieval(prompted):
    memory_rows = [r for r in rows(prompted) if r["task"] == "memorybank_probe"]
    for row in memory_rows:
        memory = row["inputs"]["memory"]
        assert memory["shown"] == "excerpt chosen by the task" and memory["items"]
        prompt_text = row["prompt"][-1]["content"]
        assert all(item["text"].replace("\n", " | ") in prompt_text for item in memory["items"])
        assert row["retrieved"] == [] and row["evidence_source"] is None
    results = json.loads((prompted / "results.json").read_text())
    assert "chose no memory items" in results["not_applicable"]["memorybank_probe"]["evidence_recall@1"]


def test_a_retrieving_system_reports_its_own_evidence(tmp_path):
    run_system(SystemSpec("retrieval"), [TaskSpec("memorybank_probe", limit=3)], tmp_path, command=["t"])
    for row in rows(tmp_path):
        assert row["retrieved"] and row["evidence_source"] == "system"
        assert row["inputs"]["memory"]["shown"] == "whole store"
    assert "evidence_recall@1" in json.loads((tmp_path / "results.json").read_text())["results"]["memorybank_probe"]


@SYSTEMS.register("test_dots")
class DotSystem(System):
    """Answers "." to everything: the degenerate output that scored BLEU-2p 50 and Dist-2 100."""

    name = "test_dots"

    def respond(self, examples):
        return [Response(example_id=e.id, text=".") for e in examples]


def test_degenerate_runs_are_flagged_in_the_table_and_results(tmp_path, capsys):
    run_system(SystemSpec("test_dots"), [TaskSpec("convai2_persona", profile="basic")], tmp_path, command=["t"])
    stored = json.loads((tmp_path / "results.json").read_text())["tasks"]["convai2_persona"]
    assert stored["warnings"] and "degenerate outputs" in stored["warnings"][0]
    assert main(["table", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "| test_dots [" in table and "are empty (0) or one token" in table
