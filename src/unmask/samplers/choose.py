"""Position rules: pure functions from the masked set (and row statistics) to an order.

Every rule produces a float64 score per masked position; a step with budget ``k`` keeps the ``k``
highest scores of each row (``top_positions``), in decreasing order. Adding standard Gumbel noise
to log-weights and keeping the top ``k`` is sampling ``k`` positions without replacement with
probability proportional to the weights (Gumbel-top-k = Plackett-Luce).
"""

from __future__ import annotations

from functools import lru_cache

import torch


def masked_flat_rows(masked: torch.Tensor) -> torch.Tensor:
    """Flat indices ``b * L + i`` of the masked positions of a ``[B, L]`` boolean mask."""
    return masked.reshape(-1).nonzero().squeeze(1)


def scatter_scores(values: torch.Tensor, rows: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``[B, L]`` float64 scores: ``values`` at the flat ``rows``, ``-inf`` elsewhere."""
    scores = torch.full((shape[0] * shape[1],), -torch.inf, dtype=torch.float64, device=values.device)
    scores[rows] = values.to(torch.float64)
    return scores.view(shape)


def top_positions(scores: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``counts[b]`` highest-scoring positions of each row, best first; equal scores are
    ranked by the lowest position first (a stable sort), so deterministic rules are too.

    Returns ``(positions, valid)``, both ``[B, max(counts)]``; ``valid[b, j]`` is ``j < counts[b]``.
    Rows must have at least ``counts[b]`` finite scores.
    """
    k_max = int(counts.max())
    # topk leaves the order of equal scores unspecified: it is used unless one of the first
    # k_max + 1 finite scores ties with its neighbour (never with continuous noise), where the
    # stable sort decides
    values, positions = scores.topk(min(k_max + 1, scores.shape[1]), dim=1, sorted=True)
    tied = (values[:, 1:] == values[:, :-1]) & torch.isfinite(values[:, 1:])
    if bool(tied.any()):
        positions = scores.argsort(dim=1, descending=True, stable=True)
    positions = positions[:, :k_max]
    valid = torch.arange(k_max, device=scores.device)[None, :] < counts[:, None]
    return positions, valid


def flat_rows(positions: torch.Tensor, valid: torch.Tensor, length: int) -> torch.Tensor:
    """Flat row ids ``b * L + position`` of the valid entries of ``[B, k]`` positions (row-major)."""
    offsets = torch.arange(positions.shape[0], device=positions.device)[:, None] * length
    return (offsets + positions)[valid]


def radical_inverse(index: int, base: int) -> tuple[int, int]:
    """Van der Corput radical inverse of ``index`` in ``base``, exactly, as ``(numerator,
    denominator)`` (so ``floor(h * n)`` is computed in integers, without rounding)."""
    numerator, denominator = 0, 1
    while index > 0:
        index, digit = divmod(index, base)
        numerator, denominator = numerator * base + digit, denominator * base
    return numerator, denominator


def scaled_floor(fraction: tuple[int, int], n: int) -> int:
    """``floor(numerator / denominator * n)`` in integers."""
    return fraction[0] * n // fraction[1]


@lru_cache(maxsize=64)
def halton_order(length: int, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """A fixed, spread-out order of ``length`` positions (Besnier et al. 2025).

    With ``grid = (H, W)`` (``H * W == length``): the 2-D Halton sequence ``(h2, h3)`` (bases 2
    and 3, from index 1), mapped to cells ``(row, col) = (floor(h2 * H), floor(h3 * W))``,
    duplicates removed (first occurrence kept); position of a cell = ``row * W + col``. This is
    the orientation of valeoai/Halton-MaskGIT (``build_halton_mask``: its base-2 coordinate
    indexes the first, row axis). Without a grid: the van der Corput sequence in base 2 on
    ``length`` cells. Returns a permutation of ``0 .. length - 1``.
    """
    if grid is not None:
        height, width = grid
        if height * width != length:
            raise ValueError(
                f"grid={tuple(grid)} has {height * width} cells but the sequence length is {length}"
            )
    seen: dict[int, None] = {}
    index = 1
    while len(seen) < length:
        if grid is None:
            cell = scaled_floor(radical_inverse(index, 2), length)
        else:
            row = scaled_floor(radical_inverse(index, 2), height)
            col = scaled_floor(radical_inverse(index, 3), width)
            cell = row * width + col
        seen.setdefault(cell, None)
        index += 1
        if index > 10_000 * length + 10_000:  # the sequence is dense, so this never triggers
            raise RuntimeError("Halton order did not cover the grid")
    order = torch.tensor(list(seen), dtype=torch.long)
    order.requires_grad_(False)
    return order  # cached: callers must not write into it


def order_scores(order: torch.Tensor) -> torch.Tensor:
    """Scores ``[L]`` that rank positions by a fixed order (first in order = highest score)."""
    scores = torch.empty(order.shape[0], dtype=torch.float64)
    scores[order] = -torch.arange(order.shape[0], dtype=torch.float64)
    return scores


def mask_positions(chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``True`` positions of each row of a ``[B, L]`` mask, in increasing order.

    Returns ``(positions, valid)``, both ``[B, max count]``, like ``top_positions``.
    """
    counts = chosen.sum(dim=1)
    k_max = int(counts.max()) if counts.numel() else 0
    positions = torch.argsort((~chosen).to(torch.int8), dim=1, stable=True)[:, :k_max]
    valid = torch.arange(k_max, device=chosen.device)[None, :] < counts[:, None]
    return positions, valid
