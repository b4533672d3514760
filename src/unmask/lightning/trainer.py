"""The Lightning ``Trainer`` of a run, from its ``hardware`` config (a ``_target_`` config:
``conf/hardware/*.yaml``; any keyword of the target is allowed there, e.g.
``+hardware.deterministic=true``), plus the arguments the entry point fixes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from hydra.utils import instantiate

NOT_TRAINER_KEYS = ("num_threads",)  # hardware keys this project reads itself


def build_trainer(hardware: dict[str, Any], **fixed: Any):
    """Set torch's threads (``num_threads``; null = torch's default), then instantiate the
    hardware's ``_target_`` with its other keys and ``fixed`` (which the config may not set). Inside
    a SLURM job the ranks come from SLURM's tasks and requeueing is left to submitit (a run resumes
    from its shards), so Lightning's own requeue is off."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if hardware.get("num_threads"):
        torch.set_num_threads(hardware["num_threads"])
    kwargs = {k: v for k, v in hardware.items() if k not in NOT_TRAINER_KEYS}
    if SLURMEnvironment.detect():
        fixed = {"plugins": [SLURMEnvironment(auto_requeue=False)], **fixed}
    return instantiate(kwargs, **fixed)


@contextmanager
def interrupts_raised() -> Iterator[None]:
    """Ctrl-C inside ``trainer.fit`` / ``predict`` / ``validate`` raises ``KeyboardInterrupt``.

    Lightning catches the interrupt inside its loops, shuts down and calls ``sys.exit(1)`` while
    handling it; that exit (one whose context is a ``KeyboardInterrupt``) is turned back into the
    interrupt, so the entry point reports it like any other Ctrl-C (one line, status 130). Any
    other exit, such as a SIGTERM's ``SystemExit(143)`` between batches, passes unchanged."""
    try:
        yield
    except SystemExit as exit_:
        if isinstance(exit_.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
