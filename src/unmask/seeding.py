"""How batches are seeded, shared by every entry point so that the same ``(seed, batch)`` always
gives the same samples, whatever the number of processes or the tool that ran it."""

from __future__ import annotations

# seeds are 32-bit, numpy's and Lightning's range (``seed_everything`` replaces a larger one by
# 0 with a warning); every batch seed then fits a torch generator's 64 bits
MAX_SEED = 2**32 - 1


def batch_seed(seed: int, batch: int) -> int:
    """Seed of the generator of batch ``batch`` in a run seeded with ``seed``."""
    return seed * 1_000_003 + batch
