"""The MaskGIT sampler (Chang et al. 2022): sample, then choose (THEORY.md section 1).

At step ``t`` with choice temperature ``alpha_t = alpha * (1 - (t + 1) / T)`` (MaskGIT: alpha = 4.5;
``anneal=False`` keeps ``alpha``):
  1. draw a proposal ``x~_i ~ p_i = softmax(z_i / temperature)`` at EVERY masked position;
  2. score ``c_i = log p_i(x~_i) + alpha_t * g_i`` with ``g_i ~ Gumbel(0, 1)`` (float64);
  3. keep the ``k_t`` masked positions with the largest score, with their proposals.
The choice depends on the sampled values, so this is not choose-then-sample; Theorem 2 of the
paper shows it behaves like the moment sampler with ``beta = 1 + 1 / alpha`` (tokens at
temperature ``alpha / (1 + alpha)``) when many positions are masked. ``alpha = inf`` reveals a
uniformly random subset of the proposals (plain masked-diffusion sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from unmask.samplers.base import StepSampler, check_positive
from unmask.samplers.choose import flat_rows, masked_flat_rows, scatter_scores, top_positions
from unmask.samplers.cts import annealed_alpha
from unmask.samplers.gumbel import gumbel64, uniform64
from unmask.samplers.rows import draw_rows


@dataclass(frozen=True)
class MaskGITSampler(StepSampler):
    alpha: float = 4.5
    anneal: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("alpha", self.alpha, allow_inf=True)

    def step(self, logits, masked, counts, step, generator):
        rows = masked_flat_rows(masked)
        uniforms = uniform64((rows.shape[0],), generator, masked.device)
        proposals, log_prob = draw_rows(logits, rows, uniforms, temperature=self.temperature)
        noise = gumbel64((rows.shape[0],), generator, masked.device)
        alpha_t = annealed_alpha(self.alpha, self.anneal, step, self.steps)
        confidence = noise if math.isinf(alpha_t) else log_prob + alpha_t * noise
        positions, valid = top_positions(scatter_scores(confidence, rows, masked.shape), counts)
        proposal_at = torch.full((masked.numel(),), -1, dtype=torch.long, device=masked.device)
        proposal_at[rows] = proposals
        return positions, valid, proposal_at[flat_rows(positions, valid, masked.shape[1])]
