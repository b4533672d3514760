"""The MaskGIT sampler (Chang et al. 2022): sample, then choose (docs/THEORY.md section 1).

At step ``t`` with choice temperature ``alpha_t`` (MaskGIT: alpha = 4.5, annealed by ``anneal``:
``jax`` = ``alpha * (1 - (t + 1) / T)``, ``pytorch`` = ``alpha * (1 - t / (T - 1))``, ``none``):
  1. draw a proposal ``x~_i ~ p_i = softmax(z_i / temperature)`` at EVERY masked position;
  2. score ``c_i = log p_i(x~_i) + alpha_t * g_i`` with ``g_i ~ Gumbel(0, 1)`` (float64);
  3. keep the ``k_t`` masked positions with the largest score, with their proposals
     (``k_t`` from ``schedule`` and the count rule ``counts``).
The choice depends on the sampled values, so this is not choose-then-sample; Theorem 2 of the
paper shows it behaves like the moment sampler with ``beta = 1 + 1 / alpha`` (tokens at
temperature ``alpha / (1 + alpha)``) when many positions are masked. ``alpha = inf`` reveals a
uniformly random subset of the proposals (plain masked-diffusion sampling). ``temperature = 0``:
argmax proposals ranked by their untempered probability, no noise (ties: lowest position).

Law-equal configurations of public code (the ``maskgit_*`` peers of ``peers.py``):
google-research/maskgit ``parallel_decode.decode`` is ``counts="maskgit_jax", anneal="jax"`` at
temperature 1 (the JAX code draws its Gumbel noise in float32, a difference in the 2**-24 tail);
valeoai/Maskgit-pytorch ``Trainer/vit.py`` ``sample`` is ``counts="maskgit_pytorch",
anneal="pytorch"``, and its ``Sampler/confidence_sampler.py`` (Halton-MaskGIT's confidence
baseline) ``counts="halton_maskgit_confidence", anneal="pytorch"``; their ``sm_temp`` is
``1 / temperature``. Those ports re-draw already revealed tokens from the current prediction;
for a denoiser whose prediction at a visible position is that token (the exact conditional,
and what their networks are trained to give) that changes nothing, and here revealed tokens
are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from unmask.samplers.base import StepSampler, check_positive
from unmask.samplers.choose import masked_flat_rows, scatter_scores, top_positions
from unmask.samplers.cts import annealed_alpha, check_anneal
from unmask.samplers.gumbel import gumbel64, uniform64
from unmask.samplers.proposals import chosen_proposals, propose
from unmask.samplers.rows import draw_rows


@dataclass(frozen=True)
class MaskGITSampler(StepSampler):
    alpha: float = 4.5
    anneal: bool | str = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("alpha", self.alpha, allow_inf=True)
        check_anneal(self.anneal, self.steps)

    def step(self, logits, masked, counts, step, generator):
        rows = masked_flat_rows(masked)
        if self.greedy:
            proposals, confidence = propose(logits, rows, 0.0, generator)
        else:
            uniforms = uniform64((rows.shape[0],), generator, masked.device)
            proposals, log_prob = draw_rows(logits, rows, uniforms, temperature=self.temperature)
            noise = gumbel64((rows.shape[0],), generator, masked.device)
            alpha_t = annealed_alpha(self.alpha, self.anneal, step, self.steps)
            confidence = noise if math.isinf(alpha_t) else log_prob + alpha_t * noise
        positions, valid = top_positions(scatter_scores(confidence, rows, masked.shape), counts)
        return positions, valid, chosen_proposals(proposals, rows, positions, valid, masked)
