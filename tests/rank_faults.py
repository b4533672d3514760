"""A Lightning callback that fails one rank of a training run, for the DDP reliability tests.

``unmask-train`` passes any Trainer keyword from the hardware config, so a test adds it with
``+hardware.callbacks=[{_target_: rank_faults.FailOnRank, rank: 1, at: fit}]`` and puts ``tests/``
on ``PYTHONPATH`` (the ranks Lightning starts inherit it). Where it fails (``at``):

- ``start``: when that rank builds its Trainer, before the rendezvous, where rank 0 waits for it;
- ``fit``: at the end of training step ``step``;
- ``validate``: at the end of the final ``trainer.validate``, after training, when rank 0 has no
  collective left to wait on (the case that used to exit 0 and write the checkpoint);
- ``kill``: the rank SIGKILLs itself at training step ``step`` (it writes nothing)."""

from __future__ import annotations

import os
import signal

import lightning as L

POINTS = ("start", "fit", "validate", "kill")


class InjectedRankFailureError(RuntimeError):
    pass


class FailOnRank(L.Callback):
    def __init__(self, rank: int = 1, at: str = "fit", step: int = 3):
        if at not in POINTS:
            raise ValueError(f"at={at!r} must be one of {', '.join(POINTS)}")
        self.rank, self.at, self.step = rank, at, step
        if at == "start" and rank > 0 and os.environ.get("LOCAL_RANK") == str(rank):
            raise InjectedRankFailureError(f"injected failure on rank {rank} before it joined the others")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_rank != self.rank or trainer.global_step != self.step:
            return
        if self.at == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.at == "fit":
            raise InjectedRankFailureError(
                f"injected failure on rank {self.rank} at training step {self.step}"
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.global_rank == self.rank and self.at == "validate" and trainer.state.fn == "validate":
            raise InjectedRankFailureError(f"injected failure on rank {self.rank} in the final validation")
