"""How the tiny strategy preset picks its training examples under an example budget."""
from __future__ import annotations

from collections import Counter

import pytest

from harness.errors import UserError
from models.magic.data import balanced, spread
from models.magic.strategy_recipe import STRATEGY_PRESETS, MagicStrategyRecipe

SKEWED = ["suggest"] * 400 + ["greet"] * 30 + ["question"] * 100 + ["other"] * 5


def test_balanced_gives_each_class_an_equal_share_and_the_rest_to_the_larger_ones():
    picked = balanced(SKEWED, 100)
    counts = Counter(SKEWED[i] for i in picked)
    assert len(picked) == len(set(picked)) == 100
    assert counts["other"] == 5 and counts["greet"] == 30  # all of the small classes
    assert abs(counts["suggest"] - counts["question"]) <= 1 and counts["suggest"] + counts["question"] == 65
    assert picked == sorted(picked)  # file order kept


@pytest.mark.parametrize("limit", [1, 3, 4, 7])
def test_balanced_never_exceeds_a_budget_smaller_than_the_class_count(limit):
    picked = balanced(SKEWED, limit)
    assert len(picked) == limit
    assert max(Counter(SKEWED[i] for i in picked).values()) == 1 if limit <= 4 else True


def test_balanced_without_a_binding_budget_keeps_everything():
    assert balanced(SKEWED, None) == list(range(len(SKEWED)))
    assert balanced(SKEWED, 10_000) == list(range(len(SKEWED)))


def test_balanced_spreads_within_a_class_rather_than_taking_its_head():
    labels = ["a"] * 100 + ["b"] * 100
    picked = balanced(labels, 10)
    assert picked == spread(list(range(100)), 5) + [100 + i for i in spread(list(range(100)), 5)]


def test_sampling_option_overrides_the_preset_and_unknown_values_are_refused():
    recipe = MagicStrategyRecipe()
    recipe.configure({})
    assert recipe.sampling(STRATEGY_PRESETS["tiny"]) == STRATEGY_PRESETS["tiny"].data["sampling"]
    recipe.configure({"sampling": "spread"})
    assert recipe.sampling(STRATEGY_PRESETS["tiny"]) == "spread"
    recipe.configure({"sampling": "stratified"})
    with pytest.raises(UserError, match="sampling: 'stratified'"):
        recipe.sampling(STRATEGY_PRESETS["tiny"])


def test_tiny_shaped_strategy_stage_trains_from_frozen_states(tmp_path):
    """Shared header + frozen lower layers + balanced sampling: two steps on a tiny Llama, recorded."""
    import json

    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.models.magic_helpers import bart_tokenizer, write_multiesc
    from training.config import Preset, TrainConfig
    from training.recipe import TrainingData
    from training.run import _train_recipe

    tokenizer = bart_tokenizer()
    llama_dir = tmp_path / "llama"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                 num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                 bos_token_id=tokenizer.bos_token_id)).save_pretrained(llama_dir)
    tokenizer.save_pretrained(llama_dir)
    tiny = STRATEGY_PRESETS["tiny"]
    preset = Preset(name="test", description="tiny-shaped", model={**tiny.model, "lora_last_layers": 2},
                    train=TrainConfig(learning_rate=1e-3, epochs=1, batch_size=4, logging_steps=1, bf16=False,
                                      cpu_threads=1),
                    data={**tiny.data, "max_length": 4096, "max_train_examples": 8, "max_valid_examples": 4, "sampling": "balanced",
                          "frozen_states": True, "shared_header": True})
    recipe = MagicStrategyRecipe()
    recipe.configure({"strategy_base": str(llama_dir)})
    data = TrainingData(train={"esconv_strategy": write_multiesc(tmp_path / "train.txt", 8)})
    try:
        summary = _train_recipe("magic", recipe, preset, data, tmp_path / "out", deepspeed=None, resume=False,
                                max_steps=2, seed=0, base=None, settings={}, report_to=())
    except UserError as err:  # the test tokenizer may merge the header's last token with the clip
        pytest.skip(str(err))
    assert summary["global_step"] == 2
    meta = json.loads((tmp_path / "out" / "dialbench_training.json").read_text())["recipe"]
    assert meta["frozen_layers"] == 1 and meta["sampling"] == "balanced" and meta["train_examples"] == 8
