"""MemoryBank memory mechanics: retention formulas, strength update, forgetting, dates, store round trip."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from models.memorybank import forgetting
from models.memorybank.dates import mentioned_dates, month_days
from models.memorybank.store import MemoryBankStore

SAMPLE_EN = Path(__file__).resolve().parents[2] / "tasks" / "samples" / "formats" / "memorybank_en" / "memory_bank_en.json"


def test_retention_formulas_match_hand_values():
    assert forgetting.retention(5, 2, "paper") == pytest.approx(0.0820849986)  # e^(-5/2)
    assert forgetting.retention(5, 2, "released") == pytest.approx(0.1353352832)  # e^(-5*2/5)
    assert forgetting.retention(3, 1, "paper") == pytest.approx(math.exp(-3))
    assert forgetting.retention(3, 1, "released") == pytest.approx(math.exp(-0.6))
    assert forgetting.retention(0, 7, "paper") == forgetting.retention(0, 7, "released") == 1.0
    # the released precedence makes strong memories fade faster, the paper's slower
    assert forgetting.retention(4, 3, "paper") > forgetting.retention(4, 1, "paper")
    assert forgetting.retention(4, 3, "released") < forgetting.retention(4, 1, "released")


def _record():
    return {"history": {"2023-04-27": [{"query": "a", "response": "b"}, {"query": "c", "response": "d"}],
                        "2023-05-06": [{"query": "e", "response": "f"}]},
            "summary": {"2023-04-27": {"content": "old day"}, "2023-05-06": {"content": "new day"}},
            "personality": {"2023-04-27": "calm", "2023-05-06": "happy"}}


def test_strength_update_adds_one_and_resets_the_recall_date():
    record = _record()
    count = forgetting.strengthen(record, "Ann", ["2023-04-27#1", "2023-04-27#summary", "2023-04-30#0"], "2023-05-07")
    assert count == 1
    row = record["history"]["2023-04-27"][1]
    assert row["memory_strength"] == 2 and row["last_recall_date"] == "2023-05-07"
    assert row["memory_id"] == "Ann_2023-04-27_1"
    untouched = record["history"]["2023-04-27"][0]
    assert untouched["memory_strength"] == 1 and untouched["last_recall_date"] == "2023-04-27"


def test_forgetting_drops_an_emptied_date_with_its_summary_and_is_seeded():
    record = _record()
    record["history"]["2023-05-06"][0]["last_recall_date"] = "3000-01-01"  # recalled "in the future": t = 0, R = 1
    dropped = forgetting.forget(record, "Ann", "2100-01-01", "paper", seed=3)  # t ~ 28,000 days: R ~ 0
    assert dropped == ["Ann_2023-04-27_0", "Ann_2023-04-27_1"]
    assert "2023-04-27" not in record["history"] and "2023-04-27" not in record["summary"]
    assert "2023-04-27" not in record["personality"]
    assert record["summary"]["2023-05-06"] == {"content": "new day"} and len(record["history"]["2023-05-06"]) == 1


def test_forgetting_draws_repeat_for_a_seed_and_differ_across_seeds():
    def dropped(seed):
        record = {"history": {f"2023-05-{d:02d}": [{"query": str(i), "response": "x"} for i in range(5)] for d in range(1, 7)}}
        return forgetting.forget(record, "Bo", "2023-05-07", "paper", seed=seed)
    assert dropped(1) == dropped(1)
    assert dropped(1) != dropped(2)
    assert forgetting.forget(_record(), "Bo", "2023-05-07", "off") == []


def test_date_parsing_english_and_chinese():
    assert month_days("On April 27th, how long did I run in the park?") == [(4, 27)]
    assert month_days("what happened on the 3rd of May and on Apr. 30?") == [(5, 3), (4, 30)]
    assert month_days("我4月29日早上跑了多远") == [(4, 29)]
    assert month_days("在5月6号我读了一本书") == [(5, 6)]
    assert month_days("五月三日那天呢？十二月二十五号呢？") == [(5, 3), (12, 25)]
    assert month_days("I may go there in 2 days") == []
    dates = ["2023-04-27", "2023-04-28", "2023-05-06"]
    assert mentioned_dates("在5月6号，我读了什么？", dates) == ["2023-05-06"]
    assert mentioned_dates("On April 29th?", dates) == []


def test_english_store_round_trip_is_byte_identical_and_saves_atomically(tmp_path):
    before = SAMPLE_EN.read_bytes()
    store = MemoryBankStore.load(SAMPLE_EN)
    assert store.key("Emma") == " Emma "  # stray spaces matched, kept on write
    assert store.dumps().encode() == before
    copy = store.copy()
    forgetting.strengthen(copy.user("Emma"), "Emma", ["2023-04-27#0"], "2023-05-01")
    out = copy.save(tmp_path / "out.json")
    assert json.loads(out.read_text())[" Emma "]["history"]["2023-04-27"][0]["memory_strength"] == 2
    assert SAMPLE_EN.read_bytes() == before  # the input is never edited
    assert not list(tmp_path.glob(".*.tmp"))


def test_published_chinese_store_round_trip_is_byte_identical(shared_data):
    path = shared_data / "memorybank" / "memory_bank_cn.json"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert MemoryBankStore.load(path).dumps().encode() == path.read_bytes()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
