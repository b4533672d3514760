"""Position rules: pure functions from the masked set (and row statistics) to an order.

Every rule produces a float64 score per masked position; a step with budget ``k`` keeps the ``k``
highest scores of each row (``top_positions``), in decreasing order. Adding standard Gumbel noise
to log-weights and keeping the top ``k`` is sampling ``k`` positions without replacement with
probability proportional to the weights (Gumbel-top-k = Plackett-Luce).
"""

from __future__ import annotations

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
    """The ``counts[b]`` highest-scoring positions of each row, best first.

    Returns ``(positions, valid)``, both ``[B, max(counts)]``; ``valid[b, j]`` is ``j < counts[b]``.
    Rows must have at least ``counts[b]`` finite scores.
    """
    k_max = int(counts.max())
    positions = scores.topk(k_max, dim=1, sorted=True).indices
    valid = torch.arange(k_max, device=scores.device)[None, :] < counts[:, None]
    return positions, valid


def flat_rows(positions: torch.Tensor, valid: torch.Tensor, length: int) -> torch.Tensor:
    """Flat row ids ``b * L + position`` of the valid entries of ``[B, k]`` positions (row-major)."""
    offsets = torch.arange(positions.shape[0], device=positions.device)[:, None] * length
    return (offsets + positions)[valid]


def radical_inverse(index: int, base: int) -> float:
    """Van der Corput radical inverse of ``index`` in ``base``."""
    result, fraction = 0.0, 1.0 / base
    while index > 0:
        index, digit = divmod(index, base)
        result += digit * fraction
        fraction /= base
    return result


def halton_order(length: int, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """A fixed, spread-out order of ``length`` positions (Besnier et al. 2025).

    With ``grid = (H, W)`` (``H * W == length``): the 2-D Halton sequence with bases 2 (column) and
    3 (row), mapped to cells ``(floor(h3 * H), floor(h2 * W))``, duplicates removed; position of a
    cell = ``row * W + col``. Without a grid: the van der Corput sequence in base 2 on ``length``
    cells. Returns a permutation of ``0 .. length - 1``.
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
            cell = int(radical_inverse(index, 2) * length)
        else:
            col = int(radical_inverse(index, 2) * width)
            row = int(radical_inverse(index, 3) * height)
            cell = row * width + col
        seen.setdefault(cell, None)
        index += 1
        if index > 10_000 * length + 10_000:  # the sequence is dense, so this never triggers
            raise RuntimeError("Halton order did not cover the grid")
    return torch.tensor(list(seen), dtype=torch.long)


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
