"""Malformed input of every kind stops `dialbench data inspect` with `PATH:LINE: field: problem`, exit 2."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from harness.cli import main
from tests.conftest import REPO_ROOT

USR = {"text": "I feel bad .", "speaker": "usr"}
SYS = {"text": "Why is that ?", "speaker": "sys", "strategy": "Question"}


def esconv_line(**changes) -> str:
    row = {"emotion_type": "anxiety", "problem_type": "job", "situation": "I lost my job .",
           "dialog": [USR, SYS, USR, SYS]}
    row.update(changes)
    return json.dumps(row)


def memorybank_folder(tmp_path, store=None, questions=None, gold=None):
    store = store if store is not None else json.dumps({
        " Amy ": {"name": "Amy", "history": {"2023-04-27": [{"query": "I like tea.", "response": "Nice!"}]}}})
    (tmp_path / "memory_bank_en.json").write_text(store)
    (tmp_path / "probing_questions_en.jsonl").write_text(questions if questions is not None else '{"Amy": ["What do I like?"]}\n')
    if gold is not None:
        (tmp_path / "memorybank_en_gold.jsonl").write_text(gold)
    return tmp_path


GOOD_GOLD = {"user": "Amy", "qid": 0, "evidence": [{"date": "2023-04-27", "turn": 0}], "answer": "Tea.",
             "keywords": ["tea"], "type": "preference"}

# (id, task, file name, content, line, field, problem) -- content is bytes or text.
CASES = [
    ("bad-json", "esconv_strategy", "valid.txt", esconv_line() + "\n{not json}\n" + esconv_line() + "\n", 2, "json", "Expecting"),
    ("missing-field", "esconv_strategy", "valid.txt", esconv_line() + "\n" + json.dumps({"emotion_type": "x", "problem_type": "y", "dialog": [USR]}) + "\n", 2, "situation", "missing field"),
    ("wrong-type", "esconv_strategy", "valid.txt", esconv_line(dialog="hello") + "\n", 1, "dialog", "expected a list, got string"),
    ("empty-dialogue", "esconv_strategy", "valid.txt", esconv_line() + "\n" + esconv_line(dialog=[]) + "\n", 2, "dialog", "empty dialogue"),
    ("unknown-speaker", "esconv_strategy", "valid.txt", esconv_line(dialog=[USR, {**SYS, "speaker": "bot"}]) + "\n", 1, "dialog[1].speaker", "unknown speaker 'bot'"),
    ("unknown-strategy", "esconv_strategy", "valid.txt", esconv_line(dialog=[USR, {**SYS, "strategy": "Hugging"}]) + "\n", 1, "dialog[1].strategy", "unknown strategy 'Hugging'"),
    ("non-alternating", "esconv_strategy", "valid.txt", esconv_line() + "\n" + esconv_line(dialog=[USR, USR, SYS]) + "\n", 2, "dialog[1].speaker", "alternating"),
    ("wrong-type-nested", "esconv_strategy", "valid.txt", esconv_line(dialog=[USR, {**SYS, "text": 3}]) + "\n", 1, "dialog[1].text", "expected a string, got integer"),
    ("non-utf8", "convai2_persona", "valid.txt", b"1 your persona: i like tea.\n2 hi\thello \xff there\n", 2, "encoding", "invalid UTF-8"),
    ("truncated-last-line", "dolphin_response", "data.jsonl", '{"text": "<s>[Human]\\nhi</s><s>[AI]\\nhello</s>"}\n{"text": "<s>[Hum', 2, "json", "truncated line"),
    ("empty-file", "open_dialogue", "dialogues_text.txt", "\n  \n", 1, "file", "file is empty"),
    ("convai2-numbering", "convai2_persona", "valid.txt", "1 your persona: i like tea.\n2 hi\thello\n4 ok\tbye\n", 3, "turn number", "expected 3"),
    ("convai2-no-tab", "convai2_persona", "valid.txt", "1 your persona: i like tea.\n2 hi hello\n", 2, "utterance", "<TAB>"),
    ("convai2-persona-only", "convai2_persona", "valid.txt", "1 your persona: i like tea.\n2 hi\thello\n1 your persona: i ski.\n", 3, "dialogue", "empty dialogue"),
    ("dolphin-duplicate-episode", "dolphin_summarization", "dolphin.jsonl",
     "".join(json.dumps({"episode": "e1", "username": "A", "botname": "B", "sessions": [{"session": "1", "history": ["A：hi", "B：yo"], "memory": ["A said hi"]}]}) + "\n" for _ in range(2)),
     2, "episode", "duplicate id 'e1'"),
    ("dolphin-unknown-speaker", "dolphin_summarization", "dolphin.jsonl",
     json.dumps({"episode": "e1", "username": "A", "botname": "B", "sessions": [{"session": "1", "history": ["A：hi", "C：yo"]}]}) + "\n",
     1, "sessions[0].history[1]", "unknown speaker"),
    ("dolphin-sft-outside-segments", "dolphin_response", "sft.jsonl", '{"text": "junk <s>[Human]\\nhi</s><s>[AI]\\nhello</s>"}\n', 1, "text", "outside"),
    ("dolphin-sft-no-target", "dolphin_response", "sft.jsonl", '{"text": "<s>[Human]\\nhi</s>"}\n', 1, "text", "final [AI]"),
    ("dolphin-messages-role", "dolphin_response", "sft.jsonl", '{"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n', 1, "messages[0].role", "unknown speaker"),
    ("dpo-missing-rejected", "dolphin_response", "dpo.jsonl", '{"prompt": "hi", "chosen": "yo"}\n', 1, "rejected", "missing field"),
    ("ed-duplicate-conv", "open_dialogue", "train.csv",
     "conv_id,utterance_idx,context,prompt,speaker_idx,utterance\nc1,1,x,p,1,hi\nc1,2,x,p,2,yo\nc2,1,x,p,1,hey\nc1,3,x,p,1,again\n", 5, "conv_id", "duplicate id 'c1'"),
    ("bst-non-alternating", "open_dialogue", "bst.json", '[\n{"previous_utterance": ["a", "b"], "dialog": [[0, "x"], [0, "y"]]}\n]\n', 2, "[0].dialog[1]", "alternation"),
    ("dailydialog-empty-utterance", "open_dialogue", "dialogues_text.txt", "Hi . __eou__ Hello . __eou__\nHi . __eou__  __eou__ Bye . __eou__\n", 2, "utterance[1]", "empty text"),
    ("esconv-json-bad-strategy", "esconv_strategy", "ESConv.json",
     '[\n {"emotion_type": "a", "problem_type": "b", "situation": "c",\n  "dialog": [\n   {"speaker": "seeker", "annotation": {}, "content": "hi"},\n'
     '   {"speaker": "supporter", "annotation": {"strategy": "Greeting"}, "content": "hello there"}\n  ]}\n]\n',
     5, "dialog[1].strategy", "unknown strategy 'Greeting'"),
]


def run_cli(capsys, *args):
    code = main(["data", "inspect", *map(str, args)])
    return code, capsys.readouterr()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_located(tmp_path, capsys, case):
    _, task, name, content, line, field, problem = case
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    extra = ["--option", "strategy_set=original"] if case[0] == "esconv-json-bad-strategy" else []
    code, out = run_cli(capsys, task, path, *extra)
    assert code == 2
    err = out.err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"dialbench: error: {path}:{line}: {field}: "), err
    assert problem in err


MEMORYBANK_CASES = [
    ("bad-date", dict(store=json.dumps({"Amy": {"history": {"2023-02-30": [{"query": "q", "response": "r"}]}}}, indent=1)),
     "memory_bank_en.json", 4, "Amy.history", "bad date '2023-02-30'"),
    ("duplicate-user-after-trim", dict(store='{\n"Amy": {"history": {}},\n" Amy ": {"history": {}}\n}'),
     "memory_bank_en.json", 3, "user", "duplicate id 'Amy'"),
    ("duplicate-json-key", dict(store='{\n"Amy": {"history": {}},\n"Amy": {"history": {}}\n}'),
     "memory_bank_en.json", 3, "id", "duplicate key 'Amy'"),
    ("empty-history", dict(store='{\n"Amy": {"history": {}}\n}'), "memory_bank_en.json", 2, "Amy.history", "empty dialogue"),
    ("unknown-question-user", dict(questions='{"Amy": ["q?"]}\n{"Bob": ["q?"]}\n'), "probing_questions_en.jsonl", 2, "user", "unknown user 'Bob'"),
    ("gold-evidence-out-of-range", dict(gold=json.dumps({**GOOD_GOLD, "evidence": [{"date": "2023-04-27", "turn": 5}]}) + "\n"),
     "memorybank_en_gold.jsonl", 1, "evidence[0].turn", "out of range"),
    ("gold-duplicate-qid", dict(gold=(json.dumps(GOOD_GOLD) + "\n") * 2), "memorybank_en_gold.jsonl", 2, "qid", "duplicate id"),
    ("gold-unknown-type", dict(gold=json.dumps({**GOOD_GOLD, "type": "trivia"}) + "\n"), "memorybank_en_gold.jsonl", 1, "type", "unknown type"),
    ("gold-wrong-type", dict(gold=json.dumps({**GOOD_GOLD, "qid": "0"}) + "\n"), "memorybank_en_gold.jsonl", 1, "qid", "expected an integer"),
]


@pytest.mark.parametrize("case", MEMORYBANK_CASES, ids=[c[0] for c in MEMORYBANK_CASES])
def test_malformed_memorybank_is_located(tmp_path, capsys, case):
    _, files, name, line, field, problem = case
    folder = memorybank_folder(tmp_path, **files)
    code, out = run_cli(capsys, "memorybank_probe", folder / "memory_bank_en.json")
    assert code == 2
    assert out.err.strip().startswith(f"dialbench: error: {folder / name}:{line}: {field}: "), out.err
    assert problem in out.err


def test_memorybank_without_questions_names_the_expected_file(tmp_path, capsys):
    (tmp_path / "memory_bank_en.json").write_text('{"Amy": {"history": {"2023-04-27": [{"query": "q", "response": "r"}]}}}')
    code, out = run_cli(capsys, "memorybank_probe", tmp_path)
    assert code == 2 and "probing_questions_en.jsonl" in out.err


def test_a_real_process_exits_2_without_traceback(tmp_path):
    path = tmp_path / "valid.txt"
    path.write_text(esconv_line(dialog=[USR, {**SYS, "strategy": "Hugging"}]) + "\n")
    result = subprocess.run([sys.executable, "-m", "harness", "data", "inspect", "esconv_strategy", str(path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert re.fullmatch(rf"dialbench: error: {re.escape(str(path))}:1: dialog\[1\]\.strategy: unknown strategy .*\n", result.stderr)


def test_unknown_format_and_task_are_user_errors(tmp_path, capsys):
    path = tmp_path / "x.txt"
    path.write_text("Hi . __eou__ Yo . __eou__\n")
    code, out = run_cli(capsys, "open_dialogue", path, "--format", "csv")
    assert code == 2 and "valid: dailydialog" in out.err
    code, out = run_cli(capsys, "open_dialog", path)
    assert code == 2 and "did you mean 'open_dialogue'" in out.err
