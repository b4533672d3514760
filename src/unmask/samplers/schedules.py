"""Unmasking schedules: how many positions each step reveals.

A schedule is a decreasing masked-fraction function ``f`` on progress ``r`` in [0, 1] with
``f(0) = 1`` and ``f(1) = 0``. For a row with ``N`` masked positions and ``T`` steps, the number of
positions still masked after step ``t`` is ``floor(N * f((t + 1) / T))`` (MaskGIT's rule), clipped
so that every step reveals at least one position and the last step reveals the rest. A row with
fewer masked positions than steps reveals one position per step until it is done.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

MASKED_FRACTION: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # MaskGIT (Chang et al. 2022): cos(pi/2 * r)
    "cosine": lambda r: torch.cos(0.5 * math.pi * r),
    # arccos(r) / (pi/2), as in Halton-MaskGIT's "arccos" schedule
    "arccos": lambda r: torch.arccos(r) / (0.5 * math.pi),
    "linear": lambda r: 1.0 - r,
    "square": lambda r: 1.0 - r**2,
    "root": lambda r: 1.0 - torch.sqrt(r),
}


def check_schedule(schedule: str) -> None:
    """Raise ``ValueError`` naming ``schedule`` if it is not a known schedule."""
    if schedule not in MASKED_FRACTION:
        known = ", ".join(sorted(MASKED_FRACTION))
        raise ValueError(f"schedule={schedule!r} is not a known schedule; known: {known}")


def unmask_counts(num_masked: torch.Tensor, steps: int, schedule: str = "cosine") -> torch.Tensor:
    """Integer number of positions to reveal at each step, per row.

    Args:
        num_masked: ``[B]`` integer tensor, masked positions per row at the start.
        steps: number of steps ``T >= 1``.
        schedule: a key of ``MASKED_FRACTION``.

    Returns:
        ``[B, T]`` long tensor ``k`` with ``k[b].sum() == num_masked[b]``; every entry is
        ``>= 1`` when ``num_masked[b] >= T``; otherwise row ``b`` reveals one position per step
        for its first ``num_masked[b]`` steps.
    """
    check_schedule(schedule)
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    n = num_masked.to(torch.long).cpu()
    if (n < 0).any():
        raise ValueError("num_masked must be non-negative")
    progress = torch.arange(1, steps + 1, dtype=torch.float64) / steps
    fraction = MASKED_FRACTION[schedule](progress).clamp(0.0, 1.0)
    fraction[-1] = 0.0  # guard against rounding: everything is revealed at the last step
    target = torch.floor(n[:, None].double() * fraction[None, :]).long()  # masked after step t
    remaining = torch.empty_like(target)
    previous = n.clone()
    for t in range(steps):
        steps_left_after = steps - 1 - t
        upper = previous - 1  # reveal at least one
        lower = torch.full_like(previous, steps_left_after)  # leave one per remaining step
        after = torch.minimum(torch.maximum(target[:, t], lower), upper)
        # rows with fewer masked positions than steps: one per step, then nothing
        after = torch.where(n >= steps, after, (previous - 1).clamp(min=0))
        remaining[:, t] = after
        previous = after
    before = torch.cat([n[:, None], remaining[:, :-1]], dim=1)
    return (before - remaining).to(num_masked.device)
