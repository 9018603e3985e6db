"""Featurisation: context truncation switch, target framing, memories, and the collator's de-duplication."""
from __future__ import annotations

from harness.records import BOT, USER, Example, Turn
from models.magic.features import FeatureSpec, Featurizer, MagicCollator
from tests.models.magic_helpers import bart_tokenizer


def _example(turns: int, index: int = 0) -> Example:
    context = tuple(Turn(USER if i % 2 == 0 else BOT, f"turn {i} about my job", strategy=None if i % 2 == 0 else "Question")
                    for i in range(turns))
    earlier = [t for t in context if t.speaker == BOT]
    return Example(id=f"d:{index}", task="esconv_strategy", dialogue_id="d", context=context, references=("so sorry .",),
                   label="Reflection of feelings",
                   inputs={"situation": "job loss", "response_memory": tuple(t.text for t in earlier),
                           "strategy_memory": tuple(t.strategy for t in earlier)})


def test_truncation_left_keeps_the_latest_turns_right_keeps_the_first():
    tokenizer = bart_tokenizer()
    example = _example(12)
    full = Featurizer(tokenizer, FeatureSpec(max_source=1000)).source(example)
    left = Featurizer(tokenizer, FeatureSpec(max_source=20, truncation="left")).source(example)
    right = Featurizer(tokenizer, FeatureSpec(max_source=20, truncation="right")).source(example)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    assert len(left) == len(right) == 20
    assert left[0] == right[0] == bos and left[-1] == right[-1] == eos
    assert left[1:-1] == full[-19:-1] and right[1:-1] == full[1:19]
    assert "turn 11" in tokenizer.decode(left) and "turn 11" not in tokenizer.decode(right)


def test_rows_and_collator_flatten_unique_memories():
    tokenizer = bart_tokenizer()
    featurizer = Featurizer(tokenizer, FeatureSpec(memory_length=8, motivation="encoded"))
    rows = [featurizer.row(_example(6), "Question", "to ask"), featurizer.row(_example(4), None),
            featurizer.row(_example(2), "Greeting")]
    assert rows[0]["labels"][-1] == tokenizer.eos_token_id and rows[1]["strategy_ids"] == -1
    assert len(rows[0]["memory"]) == 3 and len(rows[1]["memory"]) == 2  # rows[1]'s memory is a prefix of rows[0]'s
    batch = MagicCollator(pad_id=tokenizer.pad_token_id, memory_length=8)(rows)
    assert batch["memory_ids"].shape == (3, 8)  # only rows[0]'s three responses enter the banks
    assert batch["memory_strategy"].tolist() == [0, 0, 0]
    assert batch["strategy_ids"].tolist() == [0, -1, 6]
    assert batch["motivation_mask"].sum(1).tolist()[1] == len(featurizer.framed("No motivation provided", 64))
    assert batch["labels"].shape[0] == 3 and batch["attention_mask"].shape == batch["input_ids"].shape
