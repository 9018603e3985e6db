"""``dialbench score`` errors and output, and ``dialbench compare`` on two run directories."""
from __future__ import annotations

import json
import math

import pytest

from harness.cli import main


def write_run(path, outputs, task="esconv_strategy", profile="basic", labels=None, nll=None):
    refs = ["i am sorry to hear that .", "how long have you felt this way ?", "that sounds really hard .",
            "have you talked to your family ?", "you are not alone .", "what happened next ?"] * 5
    rows = []
    for i, out in enumerate(outputs):
        rows.append({"task": task, "example_id": f"e{i}", "output": out, "references": [refs[i]],
                     "label": "Question" if i % 2 else "Reflection",
                     "predicted_label": (labels or ["Question"] * len(outputs))[i],
                     "ref_nll": (nll or [None] * len(outputs))[i], "ref_tokens": 5 if nll else None,
                     "retrieved": [], "meta": {}, "scores": {}})
    path.mkdir()
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "config.json").write_text(json.dumps({"task_runs": {task: {"profile": profile}}}))
    (path / "results.json").write_text(json.dumps({"results": {task: {}}, "signatures": {task: f"profile:{profile}|lang:en"}}))
    return rows


def test_score_line_mismatch_names_files(tmp_path, capsys):
    (tmp_path / "h.txt").write_text("a\nb\n")
    (tmp_path / "r.txt").write_text("a\n")
    assert main(["score", "--hypotheses", str(tmp_path / "h.txt"), "--references", str(tmp_path / "r.txt"),
                 "--profile", "basic"]) == 2
    err = capsys.readouterr().err
    assert "r.txt has 1 lines but" in err and "h.txt has 2" in err and "Traceback" not in err


def test_score_human_output_and_zh(tmp_path, capsys):
    (tmp_path / "h.txt").write_text("我喜欢猫\n你好\n")
    (tmp_path / "r.txt").write_text("我喜欢狗\n你好\n")
    assert main(["score", "--hypotheses", str(tmp_path / "h.txt"), "--references", str(tmp_path / "r.txt"),
                 "--profile", "basic", "--language", "zh", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["Bleu_1"] == pytest.approx(5 / 6, abs=1e-6) and "lang:zh" in result["signature"]
    assert main(["score", "--hypotheses", str(tmp_path / "h.txt"), "--references", str(tmp_path / "r.txt"),
                 "--profile", "basic"]) == 0
    out = capsys.readouterr().out
    assert "95% CI [" in out and "signature: profile:basic" in out


def test_compare_same_and_better(tmp_path, capsys):
    rows = write_run(tmp_path / "a", ["ok ."] * 30, nll=[10.0] * 30,
                     labels=["Question" if i % 3 else "Reflection" for i in range(30)])
    refs = [r["references"][0] for r in rows]
    write_run(tmp_path / "b", refs, nll=[5.0] * 30, labels=["Question" if i % 2 else "Reflection" for i in range(30)])
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--json", "--resamples", "200"]) == 0
    same = json.loads(capsys.readouterr().out)["tasks"]["esconv_strategy"]["metrics"]
    assert all(r["delta"] == 0 and r["p_value"] == 1.0 for k, r in same.items() if not k.startswith("Dist"))
    assert all(math.isnan(r["p_value"]) and "corpus size" in r["note"] for k, r in same.items() if k.startswith("Dist"))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", "--resamples", "200"]) == 0
    result = json.loads(capsys.readouterr().out)["tasks"]["esconv_strategy"]
    assert result["n"] == 30 and result["profile"] == "basic"
    bleu, ppl, acc = result["metrics"]["Bleu_1"], result["metrics"]["ppl"], result["metrics"]["accuracy"]
    assert bleu["delta"] > 0 and bleu["low"] > 0 and bleu["p_value"] < 0.05
    assert ppl["a"] == pytest.approx(math.exp(2.0)) and ppl["b"] == pytest.approx(math.exp(1.0))
    assert ppl["delta"] == pytest.approx(math.exp(1.0) - math.exp(2.0))  # corpus ppl, recomputed per resample
    assert acc["b"] == 1.0 and acc["delta"] > 0
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--resamples", "50"]) == 0
    text = capsys.readouterr().out
    assert "esconv_strategy  (profile basic, 30 paired examples)" in text and "Bleu_1" in text


def test_compare_errors(tmp_path, capsys):
    write_run(tmp_path / "a", ["x"] * 3)
    write_run(tmp_path / "b", ["x"] * 3, task="other")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "share no task" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    write_run(tmp_path / "c", ["x"] * 3, profile="parlai")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c")]) == 2
    assert "different profiles" in capsys.readouterr().err
