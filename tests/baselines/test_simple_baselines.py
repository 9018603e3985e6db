"""copy_last and retrieval behave as specified on hand-built examples (no model, no data files)."""
from __future__ import annotations

from pathlib import Path

import pytest

from baselines.copy_last import CopyLastSystem
from baselines.retrieval import RetrievalSystem
from harness.errors import UserError
from harness.records import BOT, USER, Example, MemoryItem, MemoryStore, Turn
from harness.task import Task


class TinyTask(Task):
    name = "tiny"
    language = "en"

    def load(self, path: Path, fmt=None):
        raise NotImplementedError

    def build_examples(self, dialogues):
        raise NotImplementedError

    def prompt(self, example):
        return [{"role": "user", "content": example.context[-1].text}]


class TinyChineseTask(TinyTask):
    name = "tiny_zh"
    language = "zh"


def ex(eid: str, user_text: str, reference: str = "", label: str | None = None, **kw) -> Example:
    context = (Turn(BOT, "hello there", strategy="Greeting"), Turn(USER, user_text))
    return Example(id=eid, task="tiny", dialogue_id=eid, context=context,
                   references=(reference,) if reference else (), label=label, **kw)


def test_copy_last_repeats_last_turn_and_strategy():
    (response,) = CopyLastSystem(TinyTask()).respond([ex("a", "my dog died")])
    assert response.text == "my dog died"
    assert response.label == "Greeting"


def test_copy_last_prefers_the_probing_question():
    example = Example(id="q", task="tiny", dialogue_id="u", context=(), references=(),
                      inputs={"question": "What did I eat?"})
    assert CopyLastSystem(TinyTask()).respond([example])[0].text == "What did I eat?"


def test_retrieval_returns_the_response_of_the_most_similar_training_context():
    system = RetrievalSystem(TinyTask())
    system.fit([
        ex("t1", "i lost my job at the factory", "losing a job is hard", label="Reflection of feelings"),
        ex("t2", "my cat is sick and will not eat", "have you seen a vet?", label="Question"),
        ex("t3", "exams are coming and i am stressed", "make a study plan", label="Providing Suggestions"),
    ])
    responses = system.respond([ex("q1", "the cat does not eat anything"), ex("q2", "they fired me from my job")])
    assert [r.text for r in responses] == ["have you seen a vet?", "losing a job is hard"]
    assert [r.label for r in responses] == ["Question", "Reflection of feelings"]
    assert [r.example_id for r in responses] == ["q1", "q2"]


def test_retrieval_uses_character_ngrams_for_chinese():
    system = RetrievalSystem(TinyChineseTask())
    system.fit([ex("t1", "我今天去公园跑步了", "跑了多久？"), ex("t2", "我想学画画", "喜欢哪位画家？")])
    assert system.respond([ex("q", "公园跑步很累")])[0].text == "跑了多久？"


def test_retrieval_over_memory_reports_ranked_item_ids():
    store = MemoryStore(user="Lucy", items=(
        MemoryItem("2023-04-27#0", "User: I ran in the park for an hour\nAI: Great exercise!", "2023-04-27",
                   meta={"response": "Great exercise!"}),
        MemoryItem("2023-04-28#0", "User: Recommend me a painter\nAI: Try Monet.", "2023-04-28",
                   meta={"response": "Try Monet."}),
    ))
    example = Example(id="q", task="tiny", dialogue_id="Lucy", context=(), references=(), memory=store,
                      inputs={"question": "Which painter did you recommend?"})
    (response,) = RetrievalSystem(TinyTask(), top_k=1).respond([example])
    assert response.retrieved == ("2023-04-28#0",)
    assert response.text == "Try Monet."


def test_retrieval_without_training_data_says_how_to_give_it():
    with pytest.raises(UserError, match="--train-data tiny=PATH"):
        RetrievalSystem(TinyTask()).respond([ex("q", "anything")])


def test_unknown_system_option_is_a_user_error():
    with pytest.raises(UserError, match="valid: last_turns, top_k"):
        RetrievalSystem(TinyTask(), topk=3)
