"""The strategy model's prompt, targets and both parsers; motivations alignment; strategy names."""
from __future__ import annotations

import json

import pytest

from harness.errors import DataError, UserError
from harness.records import BOT, USER, Example, Turn
from models.magic.data import load_motivations
from models.magic.prompt import TARGET_PREFIX, build_prompt, build_target, parse_strategy
from models.magic.strategies import MAGIC_ORDER, strategy_id

CONTEXT = (Turn(USER, "i lost my job ."), Turn(BOT, "how long ago ?", strategy="Question"), Turn(USER, "last week ."))


def test_prompt_has_magic_sections_numbered_clip_and_no_target():
    prompt = build_prompt(CONTEXT)
    assert prompt.startswith("1) Task definition and instruction\n")
    assert "2) Example and Answers" in prompt and "3) Dialogue context to be inferred" in prompt
    assert prompt.endswith("(1) Seeker: i lost my job .\n(2) Supporter: how long ago ? [Question]\n(3) Seeker: last week .\nMotivation:\n")
    assert "(2) Supporter" in build_prompt(CONTEXT, max_turns=2) and "(1) Seeker" not in build_prompt(CONTEXT, max_turns=2).split("3)")[1]


def test_targets_with_and_without_motivation():
    assert build_target("Question") == f"{TARGET_PREFIX} [Question]."
    motivation = f"{TARGET_PREFIX} [Greeting] is to open the talk."
    assert build_target("Question", motivation) == motivation


@pytest.mark.parametrize("continuation, expected", [
    (f"{TARGET_PREFIX} [Reflection of Feelings] is to validate them.", "Reflection of feelings"),
    ("The motivation ... [providing suggestions or information] is to help", "Providing Suggestions or Information"),
    ("[not a class] then [Greeting]", "Greeting"),
    ("I would use self-disclosure here, then a question", "Self-disclosure"),  # no brackets: first name mentioned
    ("affirmation and reassurance", "Affirmation and Reassurance"),
    ("something else entirely", "Others"),
    ("", "Others"),
])
def test_intended_parser_reads_only_the_continuation(continuation, expected):
    prompt = build_prompt(CONTEXT)  # lists [Question] first and contains a worked example
    label, motivation = parse_strategy(continuation, prompt, "intended")
    assert label == expected
    assert motivation == continuation.strip().splitlines()[0] if continuation.strip() else motivation == ""


def test_released_parser_always_finds_question_in_the_echoed_prompt():
    prompt = build_prompt(CONTEXT)
    for continuation in (f"{TARGET_PREFIX} [Greeting] is to say hi.", "[Others]", "no label"):
        label, motivation = parse_strategy(continuation, prompt, "released")
        assert label == "Question"
        assert motivation == continuation.strip().splitlines()[-1]
    assert parse_strategy("[greeting] hello", "", "released")[0] == "Greeting"
    assert parse_strategy("nothing bracketed", "", "released")[0] == "Others"


def test_strategy_ids_follow_magic_order_and_unknown_names_fail():
    assert [strategy_id(name) for name in MAGIC_ORDER] == list(range(8))
    assert strategy_id("[reflection of feelings]") == 2
    assert strategy_id("Information") == 5  # the original set's label merges into suggestions
    with pytest.raises(UserError, match="unknown strategy 'Humour'"):
        strategy_id("Humour")


def _examples(n):
    return [Example(id=str(i), task="esconv_strategy", dialogue_id="d", context=CONTEXT, references=("x",), label="Question")
            for i in range(n)]


def test_motivations_must_align_with_the_training_examples(tmp_path):
    path = tmp_path / "motivations_4_LLaMA.json"
    path.write_text(json.dumps(["a", "b"]), encoding="utf-8")
    assert load_motivations(path, _examples(2)) == ["a", "b"]
    with pytest.raises(DataError, match="holds 2 motivations but the training split has 3 examples"):
        load_motivations(path, _examples(3))
    path.write_text(json.dumps(["a", 3]), encoding="utf-8")
    with pytest.raises(DataError, match=r"\[1\]: expected a string"):
        load_motivations(path, _examples(2))
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        load_motivations(path, _examples(2))
    assert load_motivations(None, _examples(2)) is None
