"""SPT's input template and label masking, as published (systems.md section 2.2)."""
from __future__ import annotations

from harness.records import BOT, USER, Example, Persona, Turn
from models.spt.format import SPTFormat, prompt_text
from models.spt.trainer import SPTCollator
from spt_helpers import tiny_tokenizer

EXAMPLE = Example(id="d:3", task="convai2_persona", dialogue_id="d",
                  context=(Turn(USER, "hi there"), Turn(BOT, "hello"), Turn(USER, "do you swim")),
                  references=("i swim every day",),
                  personas=(Persona(BOT, ("i like to swim.", "i am a chef.")), Persona(USER, ("i hate water.",))))


def test_template_is_the_published_one() -> None:
    assert prompt_text(EXAMPLE) == ("given persona: i like to swim. i am a chef.; context: Q: hi there R: hello "
                                    "Q: do you swim R:")
    assert prompt_text(EXAMPLE, max_context_turns=1) == "given persona: i like to swim. i am a chef.; context: Q: do you swim R:"


def test_loss_on_target_and_eos_only_and_the_llama_eos_quirk() -> None:
    tokenizer = tiny_tokenizer()  # pad = eos, as Llama in the released code
    keep = SPTFormat(tokenizer).training_row(EXAMPLE)
    prompt = SPTFormat(tokenizer).prompt_ids(EXAMPLE)
    target = tokenizer.encode(" i swim every day", add_special_tokens=False) + [tokenizer.eos_token_id]
    assert keep["input_ids"] == prompt + target and keep["selector_ids"] == prompt
    assert keep["labels"] == [-100] * len(prompt) + target
    released = SPTFormat(tokenizer, drop_eos_when_pad=True).training_row(EXAMPLE)
    assert released["labels"] == [-100] * len(prompt) + target[:-1] + [-100]
    short = SPTFormat(tokenizer, max_length=len(target) + 3).training_row(EXAMPLE)
    assert short["input_ids"] == prompt[-3:] + target  # truncated from the left: the target survives


def test_collator_selector_input_switch() -> None:
    tokenizer = tiny_tokenizer()
    row = SPTFormat(tokenizer).training_row(EXAMPLE)
    other = {**row, "context": "Q: something else entirely R:"}
    paper = SPTCollator(tokenizer.pad_token_id)([row, other])
    released = SPTCollator(tokenizer.pad_token_id, selector_input="released")([row, other])
    assert paper["selector_ids"].shape[1] == len(row["selector_ids"])
    assert released["selector_ids"].shape[1] == len(row["input_ids"])
    assert paper["pair_targets"].tolist() == [[0.0, -1.0], [0.0, 0.0]]
    assert "pair_targets" not in SPTCollator(tokenizer.pad_token_id)([row])
