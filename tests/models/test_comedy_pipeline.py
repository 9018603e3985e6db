"""COMEDY's released control flow on a synthetic episode file, the released checkpoint layout, bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from comedy_helpers import write_episodes, write_released_layout

from harness.errors import DataError
from models.comedy import prompts
from models.comedy.pipeline import Pipeline, plan
from tasks.formats.dolphin import load_episodes

REPO = Path(__file__).resolve().parents[2]


def _episodes(path: Path):
    from models.comedy.pipeline import Episode, Session

    out = []
    for dialogue in load_episodes(path):
        sessions = tuple(Session(s["session"], tuple(s["raw"])) for s in dialogue.meta["sessions"])
        out.append(Episode(dialogue.id, dialogue.meta["username"], dialogue.meta["botname"], sessions, dialogue.source))
    return out


def test_control_flow_15_memories_one_compression_skip_rule_and_at_most_5_replies(tmp_path: Path) -> None:
    episode = _episodes(write_episodes(tmp_path / "ep.json", 24, short=(17, 19)))[0]
    seen: list[str] = []

    def generate(texts: list[str]) -> list[str]:  # records what the model is asked, answers by stage
        seen.extend(texts)
        return ["【林晓学了菜|小暖夸她】" if "【xxx|xxx|xxx】" in t else "画像###关系###事件" if "请根据参考资料" in t
                else "[AI]\n好呀" for t in texts]

    pipeline = Pipeline(generate, "zh", tokenizer_adds_bos=True)
    record = pipeline.run([episode])[0]
    assert pipeline.calls == {"summarize": 15, "compress": 1, "respond": 5}
    assert len(record["memories"]) == 15 and record["memories"][0] == "林晓学了菜|小暖夸她"
    assert [r["session"] for r in record["responses"]] == ["s16", "s18", "s20", "s21", "s22"]
    assert record["skipped_sessions"] == ["s17", "s19"] and record["responses"][0]["response"] == "好呀"
    compress = next(t for t in seen if "请根据参考资料" in t)
    assert compress.count("林晓学了菜|小暖夸她") == 15  # every Task-1 memory, joined by "。"
    reply = seen[-5]
    assert reply.startswith("[Human]\n") and reply.endswith("小暖：</s>\n<s>[AI]\n")  # bos comes from the tokenizer
    assert "林晓：第16次聊天真开心，我们下次再聊聊别的事情吧。" in reply and "画像###关系###事件" in reply
    assert "小暖：太厉害了！ 林晓：第16次" in reply  # four utterances + the fifth's first line, joined by spaces


def test_plan_matches_the_dolphin_response_task_rule(tmp_path: Path) -> None:
    from harness.plugins import TASKS

    path = write_episodes(tmp_path / "ep.json", 30, short=(16, 20, 21))
    task = TASKS.get("dolphin_response")()
    examples = task.build_examples(task.load(path))
    probes = plan(_episodes(path)[0]).probes
    assert [e.inputs["session"] for e in examples] == [p.session for p in probes] == ["s17", "s18", "s19", "s22", "s23"]
    assert all(len(e.memory.items) == 15 for e in examples)


def test_sessions_out_of_order_are_a_data_error(tmp_path: Path) -> None:
    path = write_episodes(tmp_path / "ep.json", order=[1, 2, 4, 3, 5])
    with pytest.raises(DataError, match=r"ep.json:\d+: ep1.s3: sessions out of order: 's3' comes after 's4'"):
        plan(_episodes(path)[0])


def test_released_postprocessing_switch() -> None:
    assert prompts.clean("【I like it|ok】</s>junk") == "I like it|ok"
    assert prompts.clean("]\nI like it</s>", "released") == " like it"  # the released strip('I]\\n') eats the "I"
    assert prompts.clean("]\n好的\n", "released") == "好的" and prompts.clean("[AI]\n好的") == "好的"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    return env


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def released_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_released_layout(tmp_path_factory.mktemp("comedy_7b_layout"))


def test_released_layout_loads_with_weights_only(released_dir: Path) -> None:
    import torch

    from harness.checkpoints.loader import load_model

    assert not list(released_dir.glob("*.safetensors")) and (released_dir / "tokenizer.model").is_file()
    loaded = load_model(str(released_dir), dtype="float32", device="cpu")
    state = torch.load(released_dir / "pytorch_model.bin", weights_only=True)
    assert next(iter(state.values())).dtype == torch.bfloat16
    key = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(loaded.model.state_dict()[key], state[key].float())
    assert type(loaded.tokenizer).__name__.startswith("LlamaTokenizer") and loaded.tokenizer.bos_token_id == 1


@pytest.mark.slow
def test_eval_end_to_end_records_stages_and_rerun_recomputes_nothing(released_dir: Path, tmp_path: Path) -> None:
    episodes = write_episodes(tmp_path / "ep.json", 18, short=(17,))
    common = ["eval", "--model", str(released_dir), "--system", "comedy", "--tasks", "dolphin_response",
              "--data", f"dolphin_response={episodes}", "--max-new-tokens", "6", "--cache", str(tmp_path / "c.sqlite")]
    first = _cli(*common, "--output", str(tmp_path / "run1"))
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "run1" / "samples.jsonl").read_text().splitlines()]
    assert [r["inputs"]["session"] for r in rows] == ["s16", "s18"]
    assert len(rows[0]["system_meta"]["memories"]) == 15 and rows[0]["system_meta"]["memory_source"] == "own"
    config = json.loads((tmp_path / "run1" / "config.json").read_text())
    system = config["task_runs"]["dolphin_response"]["system"]
    assert system["stage_requests"] == {"summarize": 15, "compress": 1, "respond": 2}
    assert system["prompts"]["language"] == "zh" and system["generation"]["top_k"] == 30
    second = _cli(*common, "--output", str(tmp_path / "run2"))
    assert second.returncode == 0, second.stderr[-2000:]
    stats = json.loads((tmp_path / "run2" / "config.json").read_text())["task_runs"]["dolphin_response"]["system"]["engine_stats"]
    assert stats.get("generate_computed", 0) == 0 and stats["generate_cached"] == 18
    again = [json.loads(line) for line in (tmp_path / "run2" / "samples.jsonl").read_text().splitlines()]
    assert [r["output"] for r in again] == [r["output"] for r in rows]


@pytest.mark.slow
def test_bad_inputs_end_with_one_line_and_exit_2(released_dir: Path, tmp_path: Path) -> None:
    shuffled = write_episodes(tmp_path / "shuffled.json", order=[*range(1, 15), 16, 15, 17, 18])
    done = _cli("eval", "--model", str(released_dir), "--system", "comedy", "--tasks", "dolphin_response",
                "--data", f"dolphin_response={shuffled}", "--no-cache", "--output", str(tmp_path / "r"))
    assert done.returncode == 2 and "sessions out of order" in done.stderr and "Traceback" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.startswith("dialbench: error")]) == 1
    same = tmp_path / "same.jsonl"
    same.write_text(json.dumps({"prompt": "结合记忆回复。林晓：你好。", "chosen": "你好呀", "rejected": "你好呀"}, ensure_ascii=False) + "\n")
    done = _cli("train", "comedy", "--stage", "dpo", "--base", str(released_dir), "--data", f"dolphin_response={same}",
                "--output", str(tmp_path / "dpo"), "--no-tensorboard")
    assert done.returncode == 2 and f"{same}:1: rejected: identical to the chosen reply" in done.stderr
    assert "Traceback" not in done.stderr
    done = _cli("train", "comedy", "--stage", "dpo", "--data", f"dolphin_response={same}", "--output", str(tmp_path / "x"))
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].endswith("--base STAGE1_DIR (the output of "
                                                                                 "`dialbench train comedy` stage 1)")


def test_prompt_language_follows_the_task_and_is_recorded() -> None:
    from harness.plugins import TASKS

    english = TASKS.get("memorybank_probe")()
    english.load(REPO / "tasks" / "samples" / "formats" / "memorybank_en")
    assert prompts.language_of(english) == "en" and prompts.language_of(TASKS.get("dolphin_response")()) == "zh"
    text = prompts.respond_prompt("Ann likes tea###close###talked about tea", "Ann: hi", "AI", "en")
    assert text.startswith("<s>[Human]\nCombine the user's compressed memory") and text.endswith("AI: </s>\n<s>[AI]\n")
    assert prompts.prompt_info("en")["templates_sha256"] != prompts.prompt_info("zh")["templates_sha256"]
