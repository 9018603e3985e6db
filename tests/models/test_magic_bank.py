"""Strategy banks: FIFO capacity, gradient only through this batch's entries, batch de-duplication, persistence."""
from __future__ import annotations

import pytest
import torch

from harness.errors import UserError
from models.magic.bank import BANK_FILE, StrategyBank, deduplicate_memories


def test_fifo_keeps_the_newest_entries_per_strategy():
    bank = StrategyBank(3, 2, capacity=4)
    for step in range(3):  # 3 batches of 2 vectors into strategy 1, one into strategy 0
        vectors = torch.tensor([[step, 0.0], [step, 1.0], [step, 2.0]])
        bank.append(vectors, torch.tensor([1, 1, 0]))
    assert bank.sizes() == [3, 4, 0]
    assert bank.banks[1].tolist() == [[1, 0], [1, 1], [2, 0], [2, 1]]  # batch 0 pushed out first
    assert bank.banks[0][:, 0].tolist() == [0, 1, 2]


def test_new_entries_keep_gradient_and_stored_banks_do_not():
    bank = StrategyBank(2, 3, capacity=8)
    bank.append(torch.ones(2, 3), torch.tensor([0, 0]))
    new = torch.full((1, 3), 2.0, requires_grad=True)
    current = bank.append(new, torch.tensor([0]))
    assert current[0].shape == (3, 3) and current[0].requires_grad
    current[0].sum().backward()
    assert new.grad is not None and new.grad.tolist() == [[1.0, 1.0, 1.0]]
    assert not any(b.requires_grad for b in bank.banks)


def test_deduplication_drops_prefixes_and_repeats_of_one_dialogue():
    a = [("hi", 6)]
    b = [("hi", 6), ("how long?", 0)]
    c = [("hi", 6), ("how long?", 0), ("so sad", 2)]
    other = [("hello", 6)]
    assert deduplicate_memories([b, a, [], c, other, list(c)]) == [3, 4]
    assert deduplicate_memories([a, a]) == [0]
    assert deduplicate_memories([[], []]) == []
    # same texts under another strategy are different memories
    assert deduplicate_memories([[("hi", 6)], [("hi", 1)]]) == [0, 1]


def test_select_pads_and_marks_empty_banks():
    bank = StrategyBank(3, 2)
    bank.banks = [torch.ones(2, 2), torch.zeros(0, 2), torch.full((3, 2), 5.0)]
    memory, padding = bank.select(torch.tensor([0, 1, 2]))
    assert memory.shape == (3, 3, 2)
    assert padding.tolist() == [[False, False, True], [True, True, True], [False, False, False]]


def test_save_load_round_trip_and_missing_bank(tmp_path):
    bank = StrategyBank(8, 4)
    bank.banks = [torch.randn(i, 4) for i in range(8)]
    bank.save(tmp_path)
    again = StrategyBank(8, 4)
    again.load(tmp_path)
    assert all(torch.equal(x, y) for x, y in zip(bank.banks, again.banks))
    (tmp_path / BANK_FILE).unlink()
    with pytest.raises(UserError, match="strategy bank missing"):
        again.load(tmp_path)
    with pytest.raises(UserError, match="holds 2 strategy banks"):
        again.load_tensors([torch.zeros(0, 4)] * 2, "x")
