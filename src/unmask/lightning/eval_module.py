"""``SamplingEvaluator``: a denoiser and a sampler, run by ``Trainer.predict`` over batch indices.

The work is ``range(num_batches)``; batch ``b`` has ``min(batch_size, num_samples - b *
batch_size)`` samples drawn with a generator seeded by ``batch_seed(seed, b)``, so the set of
samples does not depend on how many processes ran it. Each rank takes whole batches
(``RankBatches``: ``b = rank, rank + world, ...``, no padding duplicates) and writes each batch as
a shard (``shards/batch_<b>.pt``, atomically) followed by its manifest record
(``batch_<b>.json``: sha256 and run key); ``read_shards`` joins them in batch order and rank 0
writes ``manifest.json``. A shard whose record matches is skipped, so a rerun or a requeued job in
the same directory resumes; a torn, altered or unrecorded shard is regenerated, and a shard of
another configuration (run key) stops the run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from unmask.io import sha256_of, write_json_atomic
from unmask.seeding import batch_seed

log = logging.getLogger(__name__)


def num_batches(num_samples: int, batch_size: int) -> int:
    return -(-num_samples // batch_size)


class BatchIndices(Dataset):
    def __init__(self, count: int):
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        return index


class BatchIndexData(L.LightningDataModule):
    """The work of a run: batch indices ``0 .. count - 1``, each rank taking its ``RankBatches``
    (the ranks are known once the trainer has launched its processes)."""

    def __init__(self, count: int):
        super().__init__()
        self.count = count

    def predict_dataloader(self) -> DataLoader:
        ranks = RankBatches(self.count, self.trainer.global_rank, self.trainer.world_size)
        return DataLoader(BatchIndices(self.count), batch_size=1, sampler=ranks, num_workers=0)


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


def record_path(shard: Path) -> Path:
    """The shard's manifest record: ``batch_<b>.json`` with its sha256 and the run key."""
    return shard.with_suffix(".json")


class ShardConflictError(RuntimeError):
    """The run directory holds shards made with another configuration."""


def load_shard(path: Path, run_key: str | None = None) -> dict[str, Any] | None:
    """The shard's content, or ``None`` when it must be (re)generated: missing, no manifest record
    (the job died between the two writes), a sha256 that does not match its record (torn or
    altered), or unreadable. A shard recorded under another ``run_key`` raises
    ``ShardConflictError``: it is never used, and never silently overwritten."""
    record_file = record_path(path)
    if not path.exists() or not record_file.exists():
        return None
    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError):
        return None
    if run_key is not None and record.get("run_key") != run_key:
        raise ShardConflictError(
            f"{path} was made by another configuration (run key {record.get('run_key')!r}, this run "
            f"{run_key!r}); use a new run directory or delete {path.parent}"
        )
    if sha256_of(path) != record.get("sha256"):
        log.warning("shard %s does not match its manifest record: regenerating it", path.name)
        return None
    try:
        shard = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    keys = {"tokens", "nfe", "cost", "seconds", "started", "finished", "batch"}
    if not isinstance(shard, dict) or not keys <= set(shard):
        return None
    index = batch_of(path)
    if record.get("batch") != index or shard["batch"] != index:  # a shard copied under another name
        log.warning("shard %s holds batch %s, not %s: regenerating it", path.name, shard["batch"], index)
        return None
    return shard


def batch_of(path: Path) -> int:
    """The batch index in a shard's file name (``batch_<b>.pt``)."""
    return int(Path(path).stem.removeprefix("batch_"))


def write_shard(path: Path, shard: dict[str, Any], run_key: str) -> None:
    """Shard first, then its record, each atomically (temporary file + rename)."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(shard, tmp)
    os.replace(tmp, path)
    record = {"batch": shard["batch"], "samples": int(shard["tokens"].shape[0]), "run_key": run_key}
    write_json_atomic(record_path(path), record | {"sha256": sha256_of(path)})


def conflicting_shards(folder: Path, run_key: str) -> list[Path]:
    """Records in ``folder`` made under another run key (checked before any compute)."""
    out = []
    for record_file in sorted(Path(folder).glob("batch_*.json")):
        try:
            if json.loads(record_file.read_text()).get("run_key") != run_key:
                out.append(record_file)
        except (OSError, ValueError):
            continue  # an unreadable record only invalidates its own shard
    return out


def read_shards(folder: Path, count: int, run_key: str | None = None) -> list[dict[str, Any]]:
    shards = []
    for b in range(count):
        shard = load_shard(shard_path(folder, b), run_key)
        if shard is None:
            raise RuntimeError(f"shard {shard_path(folder, b)} is missing, unreadable or altered")
        shards.append(shard)
    return shards


def write_manifest(folder: Path, count: int, run_key: str) -> None:
    """``manifest.json``: every batch with its sha256, written once all shards are there."""
    batches = {}
    for b in range(count):
        batches[str(b)] = json.loads(record_path(shard_path(folder, b)).read_text())["sha256"]
    write_json_atomic(Path(folder) / "manifest.json", {"run_key": run_key, "batches": batches})


def modules_of(denoiser: Any) -> list[torch.nn.Module]:
    """The networks of a denoiser: itself if it is a module, else the modules it holds as
    attributes (a wrapper's transformer, VQ decoder, Hugging Face model)."""
    if isinstance(denoiser, torch.nn.Module):
        return [denoiser]
    return [v for v in vars(denoiser).values() if isinstance(v, torch.nn.Module)]


class SamplingEvaluator(L.LightningModule):
    """Generates batch ``b`` with ``batch_seed(seed, b)``, then computes the per-batch features of
    the network metrics on the same rank (``MetricSuite.batch_features``), and writes both as the
    batch's shard. The denoiser's networks are registered as submodules, so Lightning moves them
    to each rank's device (also when the denoiser is a plain wrapper object).
    ``on_denoiser_call``, when set, is called on every full denoiser call (progress display)."""

    def __init__(
        self,
        denoiser: Any,
        sampler: Any,
        num_samples: int,
        batch_size: int,
        seed: int,
        shard_dir: Path,
        metrics: Any | None = None,
        run_key: str = "",
        class_label: int | str | None = None,
        conditioning: Any = None,
    ):
        super().__init__()
        self.denoiser, self.sampler, self.metrics = denoiser, sampler, metrics
        self.denoiser_modules = torch.nn.ModuleList(modules_of(denoiser))
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.shard_dir, self.run_key, self.class_label = Path(shard_dir), run_key, class_label
        self.conditioning = conditioning  # unmask.data.conditioning, prepared: cond / init per sample
        self.on_denoiser_call: Any = None

    def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        # Lightning only notes a SIGTERM (scancel, a node going down) during predict; stop between
        # batches instead: finished shards stay, the rest is redone by the next run in this directory
        if getattr(self.trainer, "received_sigterm", False):
            raise SystemExit(128 + signal.SIGTERM)

    def on_predict_start(self) -> None:
        if self.metrics is not None:
            self.metrics.device = self.device  # metric networks load on this rank's device

    def batch_size_of(self, batch: int) -> int:
        return min(self.batch_size, self.num_samples - batch * self.batch_size)

    def labels_of(self, batch: int) -> torch.Tensor | None:
        """Class ids of the batch's samples: ``class_label`` for all, or by global sample index
        (``cycle``), so the labels, like the samples, do not depend on the ranks."""
        if self.class_label is None:
            return None
        size = self.batch_size_of(batch)
        if self.class_label == "cycle":
            first = batch * self.batch_size
            return torch.arange(first, first + size) % self.denoiser.num_classes
        return torch.full((size,), int(self.class_label), dtype=torch.long)

    def predict_step(self, batch, batch_idx):
        index = int(batch[0]) if torch.is_tensor(batch) else int(batch)
        path = shard_path(self.shard_dir, index)
        done = load_shard(path, self.run_key)
        if done is not None and done["tokens"].shape[0] == self.batch_size_of(index):
            return None  # finished by an earlier (killed, requeued) run in this directory
        device = getattr(self.denoiser, "device", self.device)
        generator = torch.Generator(device=device).manual_seed(batch_seed(self.seed, index))
        started, start = time.time(), time.perf_counter()
        denoiser = self.denoiser
        if self.on_denoiser_call is not None:
            denoiser = observed(self.denoiser, self.on_denoiser_call)
        size = self.batch_size_of(index)
        labels, init, sources = self.labels_of(index), None, None
        if self.conditioning is not None:
            given = self.conditioning.batch(index * self.batch_size, size)
            init, sources = given.init, given.source_index
            labels = labels if given.cond is None else given.cond
        with torch.no_grad():
            out = self.sampler.sample(denoiser, size, generator=generator, cond=labels, init=init)
        seconds = time.perf_counter() - start
        metric_start = time.perf_counter()
        features = {} if self.metrics is None else self.metrics.batch_features(self.denoiser, out.tokens)
        shard = {
            "batch": index,
            "tokens": out.tokens.cpu(),
            "labels": labels if labels is None or torch.is_tensor(labels) else None,
            "source_index": sources,
            "nfe": out.nfe,
            "cost": out.cost,
            "seconds": seconds,
            "features": features,
            "metric_seconds": time.perf_counter() - metric_start,
            "rank": self.global_rank,
            "started": started,
        }
        write_shard(path, shard | {"finished": time.time()}, self.run_key)
        return None


class _Observed:
    """Forwards a denoiser and reports each full call (``__call__`` or ``encode``)."""

    def __init__(self, denoiser: Any, on_call: Any):
        self._denoiser, self._on_call = denoiser, on_call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._denoiser, name)

    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        self._on_call()
        return self._denoiser(tokens, cond)


class _ObservedPartial(_Observed):
    def encode(self, tokens: torch.Tensor, cond: Any | None = None):
        self._on_call()
        return self._denoiser.encode(tokens, cond)

    def refresh(self, tokens: torch.Tensor, rows: torch.Tensor, cache: Any, cond: Any | None = None):
        return self._denoiser.refresh(tokens, rows, cache, cond)


def observed(denoiser: Any, on_call: Any) -> Any:
    """``denoiser`` with every full call reported to ``on_call`` (same capabilities)."""
    partial = hasattr(denoiser, "encode") and hasattr(denoiser, "refresh")
    return (_ObservedPartial if partial else _Observed)(denoiser, on_call)
