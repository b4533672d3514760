"""How batches are seeded, shared by every entry point so that the same ``(seed, batch)`` always
gives the same samples, whatever the number of processes or the tool that ran it."""

from __future__ import annotations


def batch_seed(seed: int, batch: int) -> int:
    """Seed of the generator of batch ``batch`` in a run seeded with ``seed``."""
    return seed * 1_000_003 + batch
