"""``SamplingEvaluator``: a denoiser and a sampler, run by ``Trainer.predict`` over batch indices.

The work is ``range(num_batches)``; batch ``b`` has ``min(batch_size, num_samples - b *
batch_size)`` samples drawn with a generator seeded by ``batch_seed(seed, b)``, so the set of
samples does not depend on how many processes ran it. Each rank takes whole batches
(``RankBatches``: ``b = rank, rank + world, ...``, no padding duplicates) and writes each batch as
a shard (``shards/batch_<b>.pt``, atomically); ``read_shards`` joins them in batch order. A shard
that exists and loads is skipped, so a rerun in the same directory resumes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import Dataset, Sampler

from unmask.seeding import batch_seed


def num_batches(num_samples: int, batch_size: int) -> int:
    return -(-num_samples // batch_size)


class BatchIndices(Dataset):
    def __init__(self, count: int):
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        return index


class RankBatches(Sampler[int]):
    """Batches ``rank, rank + world, ...``: every batch exactly once across ranks, no padding."""

    def __init__(self, count: int, rank: int, world: int):
        self.indices = list(range(rank, count, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def shard_path(folder: Path, batch: int) -> Path:
    return Path(folder) / f"batch_{batch:06d}.pt"


def load_shard(path: Path) -> dict[str, Any] | None:
    """The shard's content, or ``None`` when it is missing or unreadable (then it is redone)."""
    if not path.exists():
        return None
    try:
        shard = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a torn or foreign file is regenerated, never used
        return None
    keys = {"tokens", "nfe", "cost", "seconds", "started", "finished"}
    return shard if isinstance(shard, dict) and keys <= set(shard) else None


def write_shard(path: Path, shard: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(shard, tmp)
    os.replace(tmp, path)


def read_shards(folder: Path, count: int) -> list[dict[str, Any]]:
    shards = []
    for b in range(count):
        shard = load_shard(shard_path(folder, b))
        if shard is None:
            raise RuntimeError(f"shard {shard_path(folder, b)} is missing or unreadable")
        shards.append(shard)
    return shards


class SamplingEvaluator(L.LightningModule):
    def __init__(
        self, denoiser: Any, sampler: Any, num_samples: int, batch_size: int, seed: int, shard_dir: Path
    ):
        super().__init__()
        self.denoiser, self.sampler = denoiser, sampler
        if isinstance(denoiser, torch.nn.Module):
            self.denoiser_module = denoiser  # moved to the device with this module
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.shard_dir = Path(shard_dir)

    def batch_size_of(self, batch: int) -> int:
        return min(self.batch_size, self.num_samples - batch * self.batch_size)

    def predict_step(self, batch, batch_idx):
        index = int(batch[0]) if torch.is_tensor(batch) else int(batch)
        path = shard_path(self.shard_dir, index)
        if load_shard(path) is not None:
            return None
        device = getattr(self.denoiser, "device", self.device)
        generator = torch.Generator(device=device).manual_seed(batch_seed(self.seed, index))
        started, start = time.time(), time.perf_counter()
        with torch.no_grad():
            out = self.sampler.sample(self.denoiser, self.batch_size_of(index), generator=generator)
        seconds = time.perf_counter() - start
        shard = {
            "batch": index,
            "tokens": out.tokens.cpu(),
            "nfe": out.nfe,
            "cost": out.cost,
            "seconds": seconds,
            "rank": self.global_rank,
            "started": started,
        }
        write_shard(path, shard | {"finished": time.time()})
        return None
