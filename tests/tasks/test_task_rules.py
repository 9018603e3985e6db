"""The example-building rules of the papers, checked on small hand-made dialogues."""
from __future__ import annotations

import json

import pytest

from harness.plugins import TASKS
from tasks import samples_dir

FORMATS = samples_dir() / "formats"


def build(name, path, protocol=None, **options):
    task = TASKS.get(name)(protocol=protocol, **options)
    return task, task.build_examples(task.load(path))


def write_esconv(tmp_path, *dialogs):
    path = tmp_path / "test.txt"
    rows = []
    for turns in dialogs:
        dialog = [{"text": text, "speaker": "usr"} if who == "u" else {"text": text, "speaker": "sys", "strategy": who}
                  for who, text in turns]
        rows.append(json.dumps({"emotion_type": "sadness", "problem_type": "job", "situation": "I can ' t sleep .", "dialog": dialog}))
    path.write_text("\n".join(rows) + "\n")
    return path


def test_esconv_magic_rule_parity_and_memories(tmp_path):
    sys_first = [("Greeting", "Hi ."), ("u", "Hello ."), ("Question", "What ' s wrong ?"), ("u", "I ' m sad ."),
                 ("Reflection of feelings", "That sounds hard ."), ("u", "Yes .")]
    usr_first = [("u", "Hi ."), ("Question", "How are you ?"), ("u", "Bad ."), ("Others", "I see .")]
    path = write_esconv(tmp_path, sys_first, usr_first)
    task, examples = build("esconv_strategy", path)
    assert [e.id for e in examples] == ["d0:2", "d0:4", "d1:1", "d1:3"]
    second = examples[1]
    assert second.label == "Reflection of feelings" and second.references == ("That sounds hard .",)
    assert second.inputs["response_memory"] == ("Hi .", "What ' s wrong ?")
    assert second.inputs["strategy_memory"] == ("Greeting", "Question")
    assert len(second.context) == 4 and second.inputs["situation"] == "I can ' t sleep ."
    assert examples[2].inputs["response_memory"] == ()
    _, last = build("esconv_strategy", path, protocol="last")
    assert [e.id for e in last] == ["d0:4", "d1:3"]  # d0 ends with usr: the second-to-last turn
    assert all(e.inputs["response_memory"] == () for e in last)
    _, expanded = build("esconv_strategy", path, expand_contractions=True)
    assert expanded[1].context[-1].text == "I am sad ."
    assert expanded[1].inputs["response_memory"][1] == "What is wrong ?"
    assert expanded[0].inputs["situation"] == "I can not sleep ."


def test_esconv_original_json_merges_consecutive_messages():
    task, examples = build("esconv_strategy", FORMATS / "esconv" / "ESConv.json")
    dialogue = task.load(FORMATS / "esconv" / "ESConv.json")[0]
    merged = dialogue.turns[1]
    assert merged.text == "Hello! I'm here. How are you feeling today?"
    assert merged.strategy == "Others" and merged.meta["all_strategy"] == ["Others", "Question"]
    labels = [e.label for e in examples]
    assert "Providing Suggestions or Information" in labels  # suggestions + information merged
    _, original = build("esconv_strategy", FORMATS / "esconv" / "ESConv.json", strategy_set="original")
    assert "Providing Suggestions" in [e.label for e in original]


@pytest.mark.parametrize("text, label, body", [
    ("[Reflection of Feelings] That sounds hard.", "Reflection of feelings", "That sounds hard."),
    ("Question: how long has this lasted?", "Question", "how long has this lasted?"),
    ("I am here for you.", "Others", "I am here for you."),
    ("Sure! [providing suggestions] Try a walk.", "Providing Suggestions or Information", "Sure!  Try a walk."),
])
def test_esconv_parse_output_maps_to_the_8_classes(text, label, body):
    task = TASKS.get("esconv_strategy")()
    example = task.build_examples(task.load(task.sample_path("test")))[0]
    response = task.parse_output(example, text)
    assert (response.label, response.text) == (label, body)


def test_convai2_context_grows_and_personas_are_attached():
    task, examples = build("convai2_persona", FORMATS / "convai2" / "train_both_revised.txt")
    first, second, third = examples[:3]
    assert [len(e.context) for e in (first, second, third)] == [1, 3, 5]
    assert third.context[1].text == first.references[0]
    owners = {p.owner: p.sentences for p in first.personas}
    assert owners["bot"][1] == "i am a dentist." and owners["user"] == ("i have a little brother.", "i like video games.")
    assert first.meta["candidates"][-1] == first.references[0]
    _, short = build("convai2_persona", FORMATS / "convai2" / "train_both_revised.txt", max_context_turns=1)
    assert [len(e.context) for e in short[:3]] == [1, 1, 1]


def test_convai2_json_form_rebuilds_the_conversation():
    _, examples = build("convai2_persona", FORMATS / "convai2" / "personachat_self_original.json")
    assert [t.text for t in examples[1].context] == ["hi !", "hello ! i am drinking tea in my garden .", "nice , what grows there ?"]
    assert examples[1].references == ("tomatoes and roses , mostly .",)


def test_open_dialogue_windows_and_sp2_targets(tmp_path):
    path = tmp_path / "dialogues_text.txt"
    path.write_text(" __eou__ ".join(f"u{i}" for i in range(8)) + " __eou__\n")
    _, examples = build("open_dialogue", path)
    assert [e.id for e in examples] == ["d0:1", "d0:3", "d0:5", "d0:7"]
    assert [t.text for t in examples[-1].context] == ["u3", "u4", "u5", "u6"]  # max_turns 5 counts the target
    assert [t.text for t in examples[0].context] == ["u0"]
    _, both = build("open_dialogue", path, targets="all", max_turns=3)
    assert len(both) == 7 and [t.text for t in both[-1].context] == ["u5", "u6"]


def test_open_domain_sources_follow_the_baseline_preprocessing():
    task = TASKS.get("open_dialogue")()
    ed = task.load(FORMATS / "open_domain" / "empathetic.csv")
    assert [t.text for t in ed[0].turns] == ["I finished my first marathon last weekend!", "Wow, congratulations! How long did it take?",
                                             "About four hours. My legs still hurt!", "That is a great time. Rest well!"]
    bst = task.load(FORMATS / "open_domain" / "bst_hf.json")
    assert [t.text for t in bst[0].turns] == ["I love gardening.", "Me too, what do you grow?", "Tomatoes mostly.",
                                              "Do they get enough sun?", "Yes, in pots on my balcony.", "Balcony gardens are great."]
    persona = task.load(FORMATS / "convai2" / "valid_none_original_no_cands.txt")
    assert persona[0].turns[0].text == "hi there , how is your day ?"  # __SILENCE__ dropped, personas unused
    assert all(not d.personas for d in persona)


def test_dolphin_dialbench_format_feeds_all_three_tasks():
    _, summaries = build("dolphin_summarization", samples_dir() / "dolphin_summarization.test.jsonl")
    first = summaries[0]
    assert first.id == "sum-0:1" and len(first.references[0].split("|")) == 3 and len(first.context) == 4
    assert first.context[0].speaker == "user" and first.inputs["username"] == first.context[0].name
    _, compressed = build("dolphin_compression", samples_dir() / "dolphin_compression.test.jsonl")
    assert len(compressed[0].inputs["session_memories"]) == 3 and compressed[0].references[0].count("###") == 2
    _, responses = build("dolphin_response", samples_dir() / "dolphin_response.test.jsonl")
    assert responses[0].inputs["compressed_memory"] and responses[0].context[-1].speaker == "user"
    task, skipped = build("dolphin_compression", samples_dir() / "dolphin_summarization.test.jsonl")
    assert skipped == [] and task.skipped == {"episode has no gold compressed_memory": 3}


def test_dolphin_training_rows_are_split_by_task():
    kinds = {}
    for name in ("dolphin_summarization", "dolphin_compression", "dolphin_response"):
        _, examples = build(name, FORMATS / "dolphin" / "sft_text.jsonl")
        kinds[name] = [e.id for e in examples]
    assert kinds == {"dolphin_summarization": ["r0:1"], "dolphin_compression": ["r1:1"], "dolphin_response": ["r2:1"]}
    task, rows = build("dolphin_response", FORMATS / "dolphin" / "dpo.jsonl")
    assert rows[0].meta["rejected"] == "花生酥很好吃，推荐你试试！" and rows[1].references == ("慢慢来，你已经比刚开始进步很多了。",)
    assert task.prompt(rows[0])[1]["content"].startswith("结合记忆回复")
    _, every = build("dolphin_summarization", FORMATS / "dolphin" / "sft_text.jsonl", sft_kind="all")
    assert len(every) == 3


def test_dolphin_episodes_follow_the_comedy_control_flow(tmp_path):
    def session(i, fifth):
        return {"sub_history": ["甲：你好", "乙：你好呀", "甲：今天好热", "乙：多喝水", f"甲：{fifth}\n第二行"], "username": "甲", "botname": "乙"}
    long_line = "我今天去游泳了，游了整整一个小时"
    episodes = {"ep": {f"s{i}": session(i, "短句" if i == 16 else long_line) for i in range(1, 24)}}
    path = tmp_path / "test_new.json"
    path.write_text(json.dumps(episodes, ensure_ascii=False))
    _, summaries = build("dolphin_summarization", path)
    assert len(summaries) == 15 and all(e.references == () for e in summaries)
    task, responses = build("dolphin_response", path)
    assert [e.id for e in responses] == ["ep:s17", "ep:s18", "ep:s19", "ep:s20", "ep:s21"]  # s16 is too short
    assert responses[0].context[-1].text == long_line and len(responses[0].context) == 5
    assert task.skipped["5th utterance's first line has 10 characters or fewer"] == 1
    assert task.skipped["episode already has 5 responses"] == 2


def test_dolphin_parse_output_cleans_like_comedy():
    task = TASKS.get("dolphin_response")()
    example = task.build_examples(task.load(task.sample_path("test")))[0]
    botname = example.inputs["botname"]
    assert task.parse_output(example, f"{botname}：好的呀</s>多余").text == "好的呀"
    assert TASKS.get("dolphin_summarization")().parse_output(example, "【甲喜欢游泳|乙关心甲】").text == "甲喜欢游泳|乙关心甲"


def test_memorybank_english_store_with_stray_spaces():
    task, examples = build("memorybank_probe", FORMATS / "memorybank_en" / "memory_bank_en.json")
    assert task.language == "en"
    assert [e.id for e in examples][:2] == ["Emma:0", "Emma:1"]
    emma = examples[0].memory
    assert emma.user == "Emma" and emma.meta["key"] == " Emma "
    assert emma.items[0].id == "2023-04-27#0" and emma.items[0].text.startswith("User: Hi, I'm Emma.")
    assert emma.items[0].meta["response"].startswith("Nice to meet you")
    assert examples[0].inputs["eval_date"] == "2023-04-29" and examples[0].references == ()
    _, dated = build("memorybank_probe", FORMATS / "memorybank_en", eval_date="2023-06-01")
    assert dated[0].inputs["eval_date"] == "2023-06-01"


def test_memorybank_prompt_shows_relevant_memory_within_budget():
    task = TASKS.get("memorybank_probe")(prompt_memory_chars=120)
    examples = task.build_examples(task.load(task.sample_path("test")))
    example = next(e for e in examples if e.meta["answer_type"] == "recall-recommendation")
    response = task.parse_output(example, "AI：答案")
    assert response.text == "答案"
    assert set(example.meta["evidence"]) <= set(response.meta["excerpt"])  # the task's selection
    assert response.retrieved == ()  # not reported as the system's retrieval
    shown = task.prompt(example)[1]["content"]
    assert sum(len(i.text) for i in task.prompt_memory(example)) <= 120 and example.inputs["question"] in shown
