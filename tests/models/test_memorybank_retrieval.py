"""MemoryBank retrieval: the released document template and neighbour expansion, and the hybrid
retriever's evidence recall on the published Chinese probes and on the bundled English sample."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.records import MemoryItem
from models.memorybank.lexical import BM25
from models.memorybank.retrieval import (MemoryRetriever, RetrievalSettings, asks_user, expand_neighbours,
                                         released_document, released_order)
from tasks.memorybank import MemoryBankProbeTask

SAMPLE_EN = Path(__file__).resolve().parents[2] / "tasks" / "samples" / "formats" / "memorybank_en"
EN_GOLD = [  # written for the bundled synthetic English sample (which ships without a gold key)
    {"user": "Emma", "qid": 0, "evidence": [{"date": "2023-04-27", "turn": 0}]},
    {"user": "Emma", "qid": 1, "evidence": [{"date": "2023-04-27", "turn": 1}]},
    {"user": "Emma", "qid": 2, "evidence": [{"date": "2023-04-28", "turn": 0}]},
    {"user": "Ravi", "qid": 0, "evidence": [{"date": "2023-04-27", "turn": 1}]},
    {"user": "Ravi", "qid": 1, "evidence": [{"date": "2023-04-29", "turn": 0}]},
]


def test_released_document_template():
    exchange = MemoryItem("2023-04-27#0", "", "2023-04-27", "exchange", {"query": "I ran 5 km", "response": "Great!"})
    summary = MemoryItem("2023-04-27#summary", "Ran in the park.", "2023-04-27", "summary")
    assert released_document(exchange) == "Conversation content on 2023-04-27:[|User|]: I ran 5 km; [|AI|]: Great!"
    assert released_document(summary) == "The summary of the conversation on 2023-04-27 is: Ran in the park."
    later = MemoryItem("2023-04-28#0", "", "2023-04-28", "exchange", {"query": "q", "response": "r"})
    assert [i.id for i in released_order([summary, later, exchange])] == ["2023-04-27#0", "2023-04-27#summary", "2023-04-28#0"]


def test_neighbour_expansion_stays_within_the_chunk_and_the_date():
    texts = ["a" * 50, "b" * 60, "c" * 80, "d" * 30]
    sources = ["d1", "d1", "d1", "d2"]
    assert expand_neighbours([1], texts, sources, 200) == [{0, 1, 2}]  # 60+80+50 = 190; +30 would pass 200
    assert expand_neighbours([3], texts, sources, 200) == [{3}]  # neighbours fit but belong to another date
    assert expand_neighbours([2], texts, sources, 100) == [{2}]  # 80 + 60 > 100: stop at once


def _recall(examples, language, settings):
    retrievers, totals = {}, {1: 0.0, 3: 0.0, 5: 0.0}
    for example in examples:
        if example.dialogue_id not in retrievers:
            retrievers[example.dialogue_id] = MemoryRetriever(example.memory.items, language, settings)
        ids = retrievers[example.dialogue_id].retrieve(example.inputs["question"]).ids
        gold = set(example.meta["evidence"])
        for k in totals:
            totals[k] += len(gold & set(ids[:k])) / len(gold)
    return {k: v / len(examples) for k, v in totals.items()}


def test_hybrid_recall_on_the_published_chinese_probes(shared_data):
    task = MemoryBankProbeTask()
    examples = task.build_examples(task.load(shared_data / "memorybank"))
    assert task.language == "zh" and len(examples) == 100
    recall = _recall(examples, "zh", RetrievalSettings())
    # measured 0.704 / 0.959 / 0.984 (the upper bound of recall@1 is 0.835: 30 questions have 2-4 gold exchanges);
    # 0.689 when each exchange is scored as one text (turn_fields=0), 0.659 without the answer handoff too
    assert recall[1] >= 0.70 and recall[3] >= 0.95 and recall[5] >= 0.98, recall
    one_text = _recall(examples, "zh", RetrievalSettings(turn_fields=0.0))
    assert one_text[1] < recall[1]
    assert _recall(examples, "zh", RetrievalSettings(turn_fields=0.0, answer_follow=0.5))[1] < one_text[1]


def test_fielded_lexical_score_adds_each_speakers_turn_scored_against_its_own_kind():
    items = [MemoryItem("d#0", "", "2023-05-01", "exchange", {"query": "Today I read Solaris in the library", "response": "Lovely!"}),
             MemoryItem("d#1", "", "2023-05-01", "exchange", {"query": "It is about an ocean planet",
                                                              "response": "A novel read in a library or a cafe every day builds a habit."}),
             MemoryItem("d#2", "", "2023-05-02", "exchange", {"query": "I played chess", "response": "Who won?"}),
             MemoryItem("d#summary", "Read Solaris; played chess.", "2023-05-02", "summary")]
    question = "Which novel did I read in the library?"
    retriever = MemoryRetriever(items, "en", RetrievalSettings(dense_weight=0.0, turn_fields=0.5))
    whole = BM25(retriever.texts, "en").scores(question)
    users = BM25([i.meta["query"] for i in items[:3]] + [items[3].text], "en").scores(question)
    replies = BM25([i.meta["response"] for i in items[:3]] + [""], "en").scores(question)
    np.testing.assert_allclose(retriever.lexical.scores(question), whole + 0.5 * (users + replies))
    one_text = MemoryRetriever(items, "en", RetrievalSettings(dense_weight=0.0, turn_fields=0.0))
    np.testing.assert_allclose(one_text.lexical.scores(question), whole)
    assert users[0] > users[1] and replies[1] > replies[0]  # the fields see who said what


def test_hybrid_with_the_same_settings_on_the_english_sample(tmp_path):
    for name in ("memory_bank_en.json", "probing_questions_en.jsonl"):
        (tmp_path / name).write_bytes((SAMPLE_EN / name).read_bytes())
    (tmp_path / "memorybank_en_gold.jsonl").write_text("".join(
        json.dumps({**row, "answer": "-", "keywords": [], "type": "recall-fact"}) + "\n" for row in EN_GOLD))
    task = MemoryBankProbeTask()
    examples = task.build_examples(task.load(tmp_path))
    assert task.language == "en"
    recall = _recall(examples, "en", RetrievalSettings())
    # 4 of 5 at rank 1; "Which chess opening do I like?" ranks the turn that raised chess first
    assert recall[1] >= 0.8 and recall[3] == 1.0, recall
    released = _recall(examples, "en", RetrievalSettings(mode="released"))
    assert released[3] >= 0.8, released


def test_explicit_dates_in_the_question_are_honoured():
    items = [MemoryItem(f"2023-04-2{d}#0", "", f"2023-04-2{d}", "exchange",
                        {"query": "I went running in the park today", "response": "Nice run!"}) for d in (7, 8, 9)]
    retriever = MemoryRetriever(items, "en", RetrievalSettings(dense_weight=0.0))
    assert retriever.retrieve("On April 28th, where did I go running?").ids[0] == "2023-04-28#0"
    assert retriever.retrieve("在4月29日我去哪里跑步了？").ids[0] == "2023-04-29#0"


def test_settings_refuse_unknown_modes():
    with pytest.raises(Exception, match="not one of hybrid, released"):
        RetrievalSettings(mode="bm25")
    with pytest.raises(Exception, match="turn_fields must be >= 0"):
        RetrievalSettings(turn_fields=-1.0)


def test_a_reply_that_asks_hands_its_score_to_the_next_exchange():
    assert asks_user("你们组的小组成员人数多吗？") and asks_user("你健身的目标是什么？加油") and asks_user("Why? ")
    assert not asks_user("Why? Because it rains. That sounds great.") and not asks_user("")
    items = [MemoryItem("d#0", "", "2023-05-01", "exchange", {"query": "I formed a badminton group", "response": "How many people are in it?"}),
             MemoryItem("d#1", "", "2023-05-01", "exchange", {"query": "About eight colleagues", "response": "Nice"}),
             MemoryItem("d#2", "", "2023-05-01", "exchange", {"query": "I also like chess", "response": "Cool"})]
    question = "how many people are in my badminton group"
    handed = MemoryRetriever(items, "en", RetrievalSettings(dense_weight=0.0, answer_follow=1.5)).retrieve(question)
    plain = MemoryRetriever(items, "en", RetrievalSettings(dense_weight=0.0, answer_follow=0.5)).retrieve(question)
    assert handed.ids[0] == "d#1" and plain.ids[0] == "d#0"
