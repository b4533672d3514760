"""Proposals for sample-then-choose rules (MaskGIT, LLaDA, Fast-dLLM): a token drawn at every
masked position before the positions are chosen, and the proposals of the chosen positions."""

from __future__ import annotations

import torch

from unmask.samplers.choose import flat_rows
from unmask.samplers.gumbel import uniform64
from unmask.samplers.rows import draw_rows, log_prob_at, row_stats


def propose(
    logits: torch.Tensor, rows: torch.Tensor, temperature: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proposals at the flat ``rows`` drawn at ``temperature`` (0 = argmax), and the untempered
    log-probability of each: LLaDA's and Fast-dLLM's confidence."""
    if temperature == 0:  # one pass: the argmax and its probability, max_v p_i(v)
        stats = row_stats(logits, rows, argmax=True)
        assert stats.argmax is not None
        return stats.argmax, -stats.log_norm
    uniforms = uniform64((rows.shape[0],), generator, rows.device)
    proposals, log_prob = draw_rows(logits, rows, uniforms, temperature=temperature)
    if temperature != 1:
        log_prob = log_prob_at(logits, rows, proposals)
    return proposals, log_prob


def chosen_proposals(
    proposals: torch.Tensor,
    rows: torch.Tensor,
    positions: torch.Tensor,
    valid: torch.Tensor,
    masked: torch.Tensor,
) -> torch.Tensor:
    """The proposals (one per flat masked row ``rows``) at the valid chosen ``positions``, row-major."""
    return proposals_by_row(proposals, rows, masked)[flat_rows(positions, valid, masked.shape[1])]


def proposals_by_row(proposals: torch.Tensor, rows: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """``[B * L]``: the proposal of each flat masked row ``rows``, ``-1`` elsewhere."""
    proposal_at = torch.full((masked.numel(),), -1, dtype=torch.long, device=masked.device)
    proposal_at[rows] = proposals
    return proposal_at
