"""Progress on a terminal: this rank's batches and the denoiser calls of the current batch."""

from __future__ import annotations

import os
import sys
from typing import Any

from lightning.pytorch.callbacks import Callback


class SamplingProgress(Callback):
    """Two rich bars on rank 0, drawn only when a terminal (not CI) watches: batches (of rank 0's
    share) and denoiser calls within the batch (out of the sampler's ``steps`` when it has a fixed
    number; adaptive samplers show a count)."""

    def __init__(self) -> None:
        self.progress: Any = None

    def on_predict_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or not sys.stderr.isatty() or os.environ.get("CI"):
            return
        self.calls_per_batch = getattr(pl_module.sampler, "steps", None)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        )
        self.progress.start()
        total = trainer.num_predict_batches[0] if trainer.num_predict_batches else None
        self.batches = self.progress.add_task("batches", total=total)
        self.calls = self.progress.add_task("denoiser calls", total=self.calls_per_batch)
        pl_module.on_denoiser_call = lambda: self.progress.advance(self.calls)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.progress is not None:
            self.progress.reset(self.calls, total=self.calls_per_batch)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.progress is not None:
            self.progress.advance(self.batches)

    def on_predict_end(self, trainer, pl_module) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
