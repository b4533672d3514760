"""Float64 noise for position choices.

Position noise lives on ``[B, L]`` (or on the rows being sampled), so it is drawn in float64:
float32 Gumbel noise has a largest value of about 16.6 (``-log(-log(1 - 2**-24))``), which
truncates the tail of Gumbel-top-k and lowers diversity (Zheng et al. 2024, arXiv 2409.02908).
"""

from __future__ import annotations

import torch

_TINY = torch.finfo(torch.float64).tiny
_ONE_MINUS_EPS = 1.0 - torch.finfo(torch.float64).eps


def uniform64(shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """Uniform(0, 1) draws in float64, clamped away from 0 and 1."""
    u = torch.rand(shape, dtype=torch.float64, generator=generator, device=device)
    return u.clamp_(_TINY, _ONE_MINUS_EPS)


def gumbel64(shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """Standard Gumbel(0, 1) draws in float64: ``g = -log(-log U)``."""
    return uniform64(shape, generator, device).log_().neg_().log_().neg_()
