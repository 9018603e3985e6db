"""SiliconFriend LoRA recipe: BELLE template with the prompt masked, the ChatGLM label quirk, presets."""
from __future__ import annotations

from harness.records import BOT, USER, Dialogue, Turn
from models.memorybank.recipe import PRESETS, belle_features, pairs
from tiny_lm import tiny_tokenizer
from training.collate import IGNORE_INDEX


def test_belle_template_masks_the_prompt_and_trains_answer_and_eos():
    tokenizer = tiny_tokenizer()
    row = belle_features(tokenizer, "i am sad", "i am here for you", 512, "intended")
    prompt = tokenizer.encode("Human: i am sad\nAssistant: ", add_special_tokens=False)
    answer = tokenizer.encode("i am here for you", add_special_tokens=False) + [tokenizer.eos_token_id]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    assert row["input_ids"] == bos + prompt + answer
    assert row["labels"] == [IGNORE_INDEX] * (len(bos) + len(prompt)) + answer


def test_released_labels_supervise_only_the_final_token():
    tokenizer = tiny_tokenizer()
    row = belle_features(tokenizer, "i am sad", "i am here for you", 512, "released")
    assert row["labels"][:-1] == [IGNORE_INDEX] * (len(row["input_ids"]) - 1)
    assert row["labels"][-1] == row["input_ids"][-1] == tokenizer.eos_token_id


def test_pairs_join_the_seeker_turns_since_the_last_supporter_turn():
    dialogue = Dialogue("d", (Turn(USER, "hi"), Turn(USER, "i feel low"), Turn(BOT, "tell me more"),
                              Turn(USER, "work is hard"), Turn(BOT, "that sounds tiring"), Turn(BOT, "extra")))
    assert pairs([dialogue]) == [("hi i feel low", "tell me more"), ("work is hard", "that sounds tiring")]


def test_presets_follow_the_published_hyperparameters():
    belle, chatglm = PRESETS["paper"], PRESETS["paper_chatglm"]
    assert (belle.model["r"], belle.model["alpha"], belle.model["dropout"]) == (8, 16, 0.05)
    assert set(belle.model["targets"]) == {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj"}
    assert (belle.train.learning_rate, belle.train.epochs, belle.train.grad_accum) == (2e-5, 3, 16)
    assert (chatglm.model["r"], chatglm.model["alpha"], chatglm.model["dropout"]) == (8, 32, 0.1)
    assert chatglm.train.learning_rate == 1e-4 and chatglm.train.epochs == 4
    assert PRESETS["tiny"].data["labels"] == "intended" and PRESETS["tiny_released_labels"].data["labels"] == "released"
