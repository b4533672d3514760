"""Partial caching for choose-then-sample samplers (docs/THEORY.md section 5).

A CTS step knows its positions ``S`` (``|S| = k_t``, in the order chosen) before it samples any
token, so it can reveal ``S`` in ``r = substeps`` chunks and refresh only the rows of ``S`` in
between:
  1. one full forward (``encode``) gives predictions for every position and every layer's K/V;
  2. the sampler's rule chooses ``S`` from those predictions;
  3. for chunk ``j = 0 .. r-1``: sample its tokens from the current predictions of its rows
     (at the token temperature of sub-step ``j``: ``ChooseThenSample.substep_anneal``);
     unless it is the last chunk, run ``refresh`` on the rows of chunk ``j`` and of the later
     chunks (the just-revealed rows must be recomputed so that the others see their new tokens;
     the K/V of every row outside ``S`` come from the cache), and replace the predictions of the
     later chunks.
Rows outside ``S`` do not see the new tokens until the next full forward: that is the
approximation. A refresh of ``q`` rows costs ``q / L`` forward-equivalents (``SampleOutput.cost``);
``nfe`` counts full calls. A denoiser without ``encode``/``refresh`` gets a full call instead of
each refresh (counted in both).

Chunks: row ``b`` splits its ``k_b`` positions into ``r_t = min(substeps, max_b k_b)`` chunks of
near-equal size, larger chunks first (so ``substeps`` larger than a step's count is clamped per
step, and a row with fewer positions than chunks has empty chunks). Refresh rows are ``[B, q]``
with ``q`` the largest number needed by any row; rows that need fewer repeat their last needed
position (recomputing a row twice writes the same K/V).
"""

from __future__ import annotations

from typing import Any

import torch

from unmask.samplers.base import Denoiser, PartialDenoiser, Trajectory, non_finite_error
from unmask.samplers.gumbel import uniform64
from unmask.samplers.rows import NonFiniteLogitsError, draw_rows


def chunk_bounds(counts: torch.Tensor, chunks: int) -> torch.Tensor:
    """``[B, chunks + 1]`` offsets: chunk ``j`` of row ``b`` is ``[bounds[b, j], bounds[b, j+1])``."""
    j = torch.arange(chunks, device=counts.device)[None, :]
    sizes = counts[:, None] // chunks + (j < counts[:, None] % chunks).long()
    return torch.cat([torch.zeros_like(counts)[:, None], sizes.cumsum(dim=1)], dim=1)


def reveal_with_partial_caching(
    sampler: Any,
    run: Trajectory,
    denoiser: Denoiser,
    cond: Any,
    counts: torch.Tensor,
    step: int,
    generator: torch.Generator,
) -> None:
    """One step of ``sampler`` (a ``ChooseThenSample`` with ``substeps > 1``): see the module doc."""
    batch_index = torch.arange(run.batch_size, device=run.device)[:, None]
    partial = isinstance(denoiser, PartialDenoiser)
    logits, cache = run.encode(denoiser, cond, step) if partial else (run.predict(denoiser, cond, step), None)
    try:
        positions, _ = sampler.choose(logits, run.masked, counts, step, generator)
    except NonFiniteLogitsError as err:
        raise non_finite_error(err, run.length, step) from None
    k_max = positions.shape[1]
    predictions = logits.gather(1, positions[:, :, None].expand(-1, -1, run.vocab_size)).contiguous()
    chunks = min(sampler.substeps, k_max)
    bounds = chunk_bounds(counts, chunks)
    slot = torch.arange(k_max, device=run.device)[None, :]
    for j in range(chunks):
        temperature = sampler.temperature * sampler.substep_token_temperature(step, j)
        in_chunk = (slot >= bounds[:, j : j + 1]) & (slot < bounds[:, j + 1 : j + 2])
        flat = (batch_index * k_max + slot)[in_chunk]
        try:
            tokens, _ = draw_rows(
                predictions,
                flat,
                uniform64((flat.shape[0],), generator, run.device),
                temperature=temperature,
            )
        except NonFiniteLogitsError:
            raise ValueError(
                f"denoiser returned NaN or infinite logits at step {step}, substep {j}"
            ) from None
        run.commit(step, positions, in_chunk, tokens, substep=j)
        if j == chunks - 1:
            break
        # refresh this chunk's rows and every later chunk's rows, left-aligned per batch row
        start, needed = bounds[:, j], counts - bounds[:, j]
        q = int(needed.max())
        offsets = torch.arange(q, device=run.device)[None, :]
        source = torch.minimum(start[:, None] + offsets, (counts[:, None] - 1).clamp(min=0))
        rows = positions.gather(1, source)
        if partial:
            fresh = run.refresh(denoiser, rows, cache, cond, step, j)
        else:
            fresh = run.predict(denoiser, cond, step).gather(
                1, rows[:, :, None].expand(-1, -1, run.vocab_size)
            )
        keep = offsets < needed[:, None]
        predictions[batch_index.expand(-1, q)[keep], source[keep]] = fresh[keep].to(predictions.dtype)
