"""Datasets for training: random text windows, MNIST images, and MNIST VQ codes."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


class RandomWindows(Dataset):
    """``num_windows`` windows of ``length`` ids at offsets drawn once from ``seed``."""

    def __init__(self, ids: torch.Tensor, length: int, num_windows: int, seed: int = 0):
        if ids.numel() <= length:
            raise ValueError(f"text of {ids.numel()} tokens is too short for windows of {length}")
        self.ids, self.length = ids, length
        g = torch.Generator().manual_seed(seed)
        self.offsets = torch.randint(0, ids.numel() - length, (num_windows,), generator=g)

    def __len__(self) -> int:
        return self.offsets.numel()

    def __getitem__(self, index: int) -> torch.Tensor:
        start = int(self.offsets[index])
        return self.ids[start : start + self.length]


def consecutive_windows(ids: torch.Tensor, length: int, limit: int | None = None) -> torch.Tensor:
    """Non-overlapping windows ``[N, length]`` (held-out evaluation)."""
    count = ids.numel() // length
    windows = ids[: count * length].view(count, length)
    return windows if limit is None else windows[:limit]


class Unwrap(Dataset):
    """A ``TensorDataset`` whose items are single tensors, not 1-tuples."""

    def __init__(self, tensor: torch.Tensor):
        self.data = TensorDataset(tensor)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.data[index][0]


def loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=g, drop_last=shuffle, num_workers=0
    )
