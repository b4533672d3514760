"""A distributed run fails as one: a failure on any rank ends every rank, in one line naming
the rank that failed, and nothing is written (``ranks_fail_together``, used by ``unmask-train``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L

from unmask.errors import ConfigError, first_line, log_to_files


class RankFailedError(RuntimeError):
    """A failure on one rank of a distributed run; the message names the rank."""


def on_rank(err: Exception, rank: int, world: int) -> Exception:
    """``err`` as one line naming its rank (a ``ConfigError`` stays one: exit status 2)."""
    message = first_line(err)
    if not isinstance(err, (ConfigError, OSError, ValueError, RuntimeError)):
        message = f"{type(err).__name__}: {message}"
    return (ConfigError if isinstance(err, ConfigError) else RankFailedError)(
        f"rank {rank} of {world}: {message}"
    )


class RankWatch(threading.Thread):
    """Rank 0 of a local DDP launch watching the ranks Lightning started, in place of Lightning's
    own observer (which SIGKILLs rank 0 within 5 s of a rank's failure, before rank 0 can say why).

    It takes the started processes out of the list that observer watches. When one stops with a
    non-zero status, rank 0 normally fails too (a broken connection) and handles it
    (``ranks_fail_together``, which calls ``stop``); if rank 0 has not done so ``grace_s`` later (it
    waits where nothing fails, as the rendezvous), the watch stops the other ranks, writes the
    line for a rank killed by a signal, and ends the process with the rank's status."""

    def __init__(self, launcher: Any, first_rank: int, world: int, grace_s: float = 5.0):
        super().__init__(daemon=True, name="unmask-rank-watch")
        self.launcher, self.first_rank, self.world, self.grace_s = launcher, first_rank, world, grace_s
        self.procs: list[subprocess.Popen] = []
        self.handled = threading.Event()
        self.taken = threading.Event()

    def failed(self) -> list[tuple[int, int]]:
        """``(global rank, exit status)`` of the watched ranks that stopped with a non-zero status."""
        return [
            (self.first_rank + i, p.poll()) for i, p in enumerate(self.procs) if p.poll() not in (None, 0)
        ]

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()

    def stop(self) -> None:
        self.handled.set()

    def run(self) -> None:
        expected = self.launcher.num_processes - 1
        while len(self.launcher.procs) < expected:  # Lightning starts them inside fit
            if self.handled.wait(0.02):
                return
        self.procs = list(self.launcher.procs)
        self.launcher.procs.clear()  # the same list Lightning's observer reads: it now watches none
        self.taken.set()
        since = None
        while not self.handled.wait(0.1):
            failed = self.failed()
            since = since or (time.monotonic() if failed else None)
            if failed and time.monotonic() - since > self.grace_s and not self.handled.is_set():
                self.kill()
                rank, status = failed[0]
                if status < 0:
                    message = rank_killed(rank, self.world, status)
                    log_to_files(message, exc_info=False)
                    sys.stderr.write(f"unmask-train: error: {message}\n")
                    sys.stderr.flush()
                os._exit(status if status > 0 else 1)

    def failed_within(self, grace_s: float) -> list[tuple[int, int]]:
        """The failed ranks, waiting up to ``grace_s`` for one (it may still be exiting)."""
        self.taken.wait(grace_s)
        deadline = time.monotonic() + grace_s
        while not (failed := self.failed()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return failed


PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Connection refused")


def peer_lost(err: BaseException) -> bool:
    """Whether ``err`` is the communication layer reporting that another rank went away."""
    return any(sign in str(err) for sign in PEER_LOST)


def rank_killed(rank: int, world: int, status: int) -> str:
    return f"rank {rank} of {world} was killed by {signal.Signals(-status).name}; no checkpoint was written"


@contextmanager
def ranks_fail_together(trainer: L.Trainer) -> Iterator[None]:
    """In a run of several processes, a failure on any rank fails the run, in one line written by
    the rank that failed (``rank 1 of 2: <cause>``), and nothing is written: the block ends with a
    barrier, which no rank passes unless every rank reaches it.

    The ranks that Lightning starts locally share rank 0's stderr, and rank 0 watches them
    (``RankWatch``). Rank 0 failing because such a rank stopped first (a broken connection) exits
    with that rank's status without a second line, or names the rank if a signal killed it (it
    wrote nothing); rank 0 failing first stops them before they report the broken connection as
    their own failure."""
    if trainer.world_size == 1:
        yield
        return
    launcher, watch = trainer.strategy.launcher, None
    starts_ranks = getattr(launcher, "procs", None) is not None  # Lightning's local launcher, ...
    if starts_ranks and not launcher.cluster_environment.creates_processes_externally:  # ... here
        first = trainer.node_rank * trainer.num_devices + 1
        watch = RankWatch(launcher, first, trainer.world_size)
        watch.start()
    try:
        yield
        trainer.strategy.barrier("ranks_fail_together")  # every rank got here intact
    except Exception as err:
        rank, world = trainer.global_rank, trainer.world_size
        log_to_files(f"rank {rank} of {world}: {first_line(err)}", exc_info=True)  # the full traceback
        if watch is not None:
            watch.stop()
            # a broken connection means a peer went first: give it time to exit (a loaded machine
            # may take seconds to tear a process down after it wrote its line)
            failed = watch.failed_within(grace_s=30.0 if peer_lost(err) else 2.0)
            watch.kill()
            if failed:
                child, status = failed[0]
                if status < 0:
                    raise RankFailedError(rank_killed(child, world, status)) from None
                raise SystemExit(status) from None  # that rank wrote its line (status 1 or 2)
        raise on_rank(err, rank, world) from None
    finally:
        if watch is not None:
            watch.stop()
