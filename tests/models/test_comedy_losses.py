"""COMEDY training maths against hand values: stage-1 masking, shared-prefix DPO log-probs, loss and SFT term."""
from __future__ import annotations

import math

import pytest
import torch

from harness.errors import DataError
from harness.records import BOT, USER, Dialogue, SourceRef, Turn
from models.comedy import dpo, sft
from training.collate import IGNORE_INDEX as X


def test_released_masking_on_a_hand_built_sequence() -> None:
    # <s> H h </s> \n <s> A a </s> \n <s> H h </s> \n <s> A a a </s>   (bos = 1, eos = 2)
    ids = [1, 7, 8, 2, 5, 1, 9, 10, 2, 5, 1, 7, 11, 2, 5, 1, 9, 12, 13, 2]
    labels = sft.released_labels(ids, bos_id=1)
    assert labels == [X, X, X, X, X, 1, 9, 10, 2, 5, X, X, X, X, X, 1, 9, 12, 13, 2]


def test_encode_drops_long_rows_and_released_padding_trains_eos() -> None:
    from models.comedy.vocab import tiny_tokenizer

    tokenizer = tiny_tokenizer(["林晓今天去游泳了。小暖很开心。"] * 5, vocab_size=300)
    segments = [("Human", "林晓今天去游泳了"), ("AI", "小暖很开心")]
    intended = sft.encode(tokenizer, segments, max_len=200, pad_loss="intended", bos=1, eos=2)
    assert intended is not None and len(intended["input_ids"]) < 200 and intended["labels"][-1] == 2
    released = sft.encode(tokenizer, segments, max_len=200, pad_loss="released", bos=1, eos=2)
    n = len(intended["input_ids"])
    assert len(released["input_ids"]) == 200 and released["labels"][n:] == [2] * (200 - n)
    assert released["attention_mask"][n:] == [0] * (200 - n)
    assert sft.encode(tokenizer, segments, max_len=n - 1, pad_loss="intended", bos=1, eos=2) is None


def test_released_scheduler_length_leaves_out_the_batch_size() -> None:
    # 1000 rows, 8 GPUs, batch 4, 3 epochs: true 3 x ceil(1000/32) = 96 steps, released 3 x 125 = 375
    assert sft.released_schedule_steps(1000, 3, world_size=8, grad_accum=1) == 375


def _log_softmax(row: list[float]) -> list[float]:
    norm = math.log(sum(math.exp(v) for v in row))
    return [v - norm for v in row]


def test_sequence_logps_start_at_the_first_difference_by_hand() -> None:
    logits = torch.tensor([[[0.0, 1.0, 2.0, 0.5], [1.0, 0.0, -1.0, 0.3], [0.2, 0.4, 0.6, 0.8], [0.0, 0.0, 0.0, 0.0]],
                           [[0.0, 1.0, 2.0, 0.5], [1.0, 0.0, -1.0, 0.3], [2.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    chosen, rejected = [3, 1, 2, 2], [3, 1, 0, 2]
    start = dpo.first_difference(chosen, rejected)
    assert start == 2
    ids = torch.tensor([chosen, rejected])
    mask = torch.ones_like(ids)
    got = dpo.sequence_logps(logits, ids, mask, torch.tensor([start, start]))
    # positions t >= 2: token x_t scored by logits[t-1]
    hand_chosen = _log_softmax([1.0, 0.0, -1.0, 0.3])[2] + _log_softmax([0.2, 0.4, 0.6, 0.8])[2]
    hand_rejected = _log_softmax([1.0, 0.0, -1.0, 0.3])[0] + _log_softmax([2.0, 1.0, 0.0, 0.0])[2]
    assert got.tolist() == pytest.approx([hand_chosen, hand_rejected], abs=1e-6)
    # released pad = eos (2) mask: every eos target drops out as well
    released = dpo.sequence_logps(logits, ids, mask, torch.tensor([start, start]), exclude_id=2)
    assert released.tolist() == pytest.approx([0.0, _log_softmax([1.0, 0.0, -1.0, 0.3])[0]], abs=1e-6)
    # padding never counts
    padded = dpo.sequence_logps(logits, ids, torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]), torch.tensor([start, start]))
    assert padded[0].item() == pytest.approx(_log_softmax([1.0, 0.0, -1.0, 0.3])[2], abs=1e-6)


def test_dpo_loss_and_sft_term_by_hand() -> None:
    pc, pr, rc, rr = torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -3.0]), torch.tensor([-11.0, -5.0]), torch.tensor([-11.0, -2.0])
    loss, stats = dpo.comedy_dpo_loss(pc, pr, rc, rr, beta=0.01, sft_weight=0.1)
    z = [0.01 * ((-10 + 11) - (-12 + 11)), 0.01 * ((-4 + 5) - (-3 + 2))]
    dpo_hand = sum(-math.log(1 / (1 + math.exp(-v))) for v in z) / 2
    sft_hand = -(-10.0 - 4.0) / 2  # summed (not token-averaged) chosen log-probs, batch mean
    assert loss.item() == pytest.approx(dpo_hand + 0.1 * sft_hand, abs=1e-6)
    assert stats["rewards/margins"] == pytest.approx(sum(z) / 2) and stats["rewards/accuracies"] == 1.0


def test_dpo_gradient_flows_through_policy_only() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(6, 4), torch.nn.Linear(4, 6))
    ids = torch.tensor([[1, 2, 3, 4], [1, 2, 5, 4]])
    logps = dpo.sequence_logps(model(ids), ids, torch.ones_like(ids), torch.tensor([2, 2]))
    loss, _ = dpo.comedy_dpo_loss(logps[:1], logps[1:], logps[:1].detach(), logps[1:].detach(), 0.01, 0.1)
    loss.backward()
    assert model[1].weight.grad is not None and model[1].weight.grad.abs().sum() > 0
    # at the start policy == reference: the DPO part is log 2, the loss log 2 + 0.1 x (-log pi_c)
    assert loss.item() == pytest.approx(math.log(2) - 0.1 * logps[0].item(), abs=1e-5)


def _pair(chosen: str, rejected: str) -> Dialogue:
    return Dialogue(id="r0", turns=(Turn(USER, "结合记忆回复。记忆：林晓在学吉他。林晓：周末好无聊。"), Turn(BOT, chosen)),
                    meta={"format": "dpo", "rejected": rejected, "kind": "response"}, source=SourceRef("pairs.jsonl", 7))


def test_shared_reply_prefix_is_excluded_and_identical_pair_is_a_data_error() -> None:
    from models.comedy.vocab import tiny_tokenizer

    tokenizer = tiny_tokenizer(["结合记忆回复。记忆：林晓在学吉他。林晓：周末好无聊。好呀，去练练吉他吧。好呀，去打篮球吧。"] * 5, 400)
    features = dpo.encode_pair(tokenizer, _pair("好呀，去练练吉他吧。", "好呀，去打篮球吧。"), max_len=512)
    chosen, rejected, start = features["chosen_ids"], features["rejected_ids"], features["start"]
    prompt = len(tokenizer(dpo.prompt_text(_pair("x", "y")), add_special_tokens=False)["input_ids"])
    assert start > prompt  # the shared reply prefix "好呀，去" is skipped too
    assert chosen[:start] == rejected[:start] and chosen[start] != rejected[start]
    assert chosen[-1] == tokenizer.eos_token_id
    with pytest.raises(DataError, match=r"pairs.jsonl:7: rejected: identical to the chosen reply"):
        dpo.encode_pair(tokenizer, _pair("好呀。", " 好呀。 "), max_len=512)


def test_recipe_switches_and_stage_rules(tmp_path) -> None:
    from harness.errors import UserError
    from models.comedy.recipe import ComedyRecipe

    recipe = ComedyRecipe()
    tiny = recipe.preset("tiny")
    preset = recipe.with_options(tiny, {"pad_loss": "released"})
    assert preset.data["pad_loss"] == "released" and tiny.data.get("pad_loss") != "released"
    with pytest.raises(UserError, match="unknown switch of 'comedy' 'pad_los'"):
        recipe.with_options(tiny, {"pad_los": "released"})
    with pytest.raises(UserError, match="'faithful' is not one of intended, released"):
        recipe.with_options(tiny, {"schedule_length": "faithful"})
    with pytest.raises(UserError, match="--stage dpo needs --base STAGE1_DIR"):
        recipe.for_stage(tiny, "dpo", None)
    with pytest.raises(UserError, match="unknown stage of 'comedy' 'ppo'"):
        recipe.for_stage(tiny, "ppo", None)
    dpo_preset = recipe.for_stage(recipe.preset("paper"), "dpo", str(tmp_path))
    assert dpo_preset.train.method == "dpo" and dpo_preset.train.dpo_beta == 0.01 and dpo_preset.train.dpo_sft_weight == 0.1
    assert dpo_preset.data["deepspeed"].endswith("comedy_dpo_zero3.json") and dpo_preset.train.warmup == 10
