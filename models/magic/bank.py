"""The strategy memory: 8 FIFO banks of max-pooled response encodings, and MAGIC's batch de-duplication.

MAGIC (``src/bart_dialog.py``, systems.md section 6.3) keeps, per strategy, the newest
``capacity`` (128) pooled encodings of past supporter responses. Banks grow only while training,
once per batch: the batch's ``response_memory`` lists are de-duplicated (a list contained in another
list of the batch, e.g. an earlier example's memory from the same dialogue, is dropped), flattened,
encoded and appended; old entries are detached while this batch's entries keep their gradient, so
the strategy encoder learns through the memory-enhance attention. At evaluation the saved banks
are read, never written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Hashable, Sequence, TypeVar

import torch

from harness.errors import UserError

T = TypeVar("T", bound=Hashable)
BANK_FILE = "memory_bank.safetensors"


def _contains(outer: Sequence[T], inner: Sequence[T]) -> bool:
    """Return True when ``inner`` occurs as a contiguous run inside ``outer``."""
    width = len(inner)
    return any(tuple(outer[i:i + width]) == tuple(inner) for i in range(len(outer) - width + 1))


def deduplicate_memories(memories: Sequence[Sequence[T]]) -> list[int]:
    """Return the indices of the memory lists to keep: non-empty and not contained in another list.

    Of two equal lists the first is kept. In a shuffled batch, examples cut from one dialogue carry
    prefixes of each other's memories; without this the same response would enter a bank twice.
    """
    keep = []
    for index, memory in enumerate(memories):
        if not memory:
            continue
        covered = False
        for other_index, other in enumerate(memories):
            if other_index == index or len(other) < len(memory):
                continue
            if len(other) == len(memory) and other_index > index:
                continue  # equal lists: the earlier one stays
            if _contains(other, memory):
                covered = True
                break
        if not covered:
            keep.append(index)
    return keep


class StrategyBank:
    """Eight FIFO banks of ``dim``-sized vectors, at most ``capacity`` each."""

    def __init__(self, n_strategies: int, dim: int, capacity: int = 128) -> None:
        self.capacity = capacity
        self.dim = dim
        self.banks: list[torch.Tensor] = [torch.zeros(0, dim) for _ in range(n_strategies)]

    def __len__(self) -> int:
        return len(self.banks)

    def sizes(self) -> list[int]:
        """Return the number of vectors in each bank."""
        return [int(bank.shape[0]) for bank in self.banks]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "StrategyBank":
        """Move every bank (in place) and return self."""
        self.banks = [bank.to(device=device, dtype=dtype or bank.dtype) for bank in self.banks]
        return self

    def append(self, vectors: torch.Tensor, strategy_ids: torch.Tensor) -> list[torch.Tensor]:
        """Append ``vectors`` to their strategies' banks (FIFO) and return the banks for this batch.

        The returned banks hold the detached old entries followed by the new ones *with* gradient;
        the stored banks keep only detached copies, so no graph outlives its batch.
        """
        current = []
        for index, bank in enumerate(self.banks):
            new = vectors[strategy_ids == index]
            joined = torch.cat([bank.detach().to(vectors.device, vectors.dtype), new], dim=0)[-self.capacity:]
            current.append(joined)
            self.banks[index] = joined.detach()
        return current

    def select(self, strategy_ids: torch.Tensor, banks: Sequence[torch.Tensor] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (memory [B, M, dim] zero-padded, key padding mask [B, M], True = padding) per row.

        ``M`` is the longest selected bank, at least 1 so that attention always has a key tensor;
        a row whose bank is empty is entirely padding (the caller zeroes its result).
        """
        banks = list(banks if banks is not None else self.banks)
        chosen = [banks[int(s)] for s in strategy_ids.tolist()]
        width = max([1] + [int(bank.shape[0]) for bank in chosen])
        reference = banks[0]
        device = strategy_ids.device
        memory = torch.zeros(len(chosen), width, self.dim, device=device, dtype=reference.dtype)
        padding = torch.ones(len(chosen), width, dtype=torch.bool, device=device)
        for row, bank in enumerate(chosen):
            size = int(bank.shape[0])
            if size:
                memory[row, :size] = bank.to(device)
                padding[row, :size] = False
        return memory, padding

    # --- persistence ---------------------------------------------------------------------------
    def state(self) -> dict[str, torch.Tensor]:
        """Return the banks as named contiguous CPU tensors (``bank.0`` ... ``bank.7``)."""
        return {f"bank.{i}": bank.detach().float().cpu().contiguous() for i, bank in enumerate(self.banks)}

    def save(self, folder: Path) -> None:
        """Write the banks to ``folder/memory_bank.safetensors``."""
        from safetensors.torch import save_file

        save_file(self.state(), str(Path(folder) / BANK_FILE), metadata={"capacity": str(self.capacity)})

    def load_tensors(self, tensors: Sequence[torch.Tensor], where: str) -> None:
        """Replace the banks by ``tensors`` (one per strategy), checking count and width."""
        if len(tensors) != len(self.banks):
            raise UserError(f"{where}: holds {len(tensors)} strategy banks, the model has {len(self.banks)}")
        for index, tensor in enumerate(tensors):
            if tensor.dim() != 2 or (tensor.shape[0] and tensor.shape[1] != self.dim):
                raise UserError(f"{where}: bank {index} has shape {tuple(tensor.shape)}, expected [n, {self.dim}]")
        self.banks = [tensor.reshape(-1, self.dim).float()[-self.capacity:] for tensor in tensors]

    def load(self, folder: Path) -> None:
        """Read ``folder/memory_bank.safetensors``; a checkpoint without it is a UserError."""
        from safetensors.torch import load_file

        path = Path(folder) / BANK_FILE
        if not path.is_file():
            raise UserError(f"{path}: strategy bank missing; a MAGIC checkpoint needs its memory bank "
                            "(saved by `dialbench train magic`)")
        try:
            tensors = load_file(str(path))
        except Exception as err:  # safetensors raises its own error type for corrupt files
            raise UserError(f"{path}: cannot read strategy bank ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
        names = sorted(tensors, key=lambda name: int(name.split(".")[-1]) if name.split(".")[-1].isdigit() else -1)
        self.load_tensors([tensors[name] for name in names], str(path))
