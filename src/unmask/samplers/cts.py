"""Choose-then-sample (CTS) samplers: pick the positions first, then sample their tokens.

A CTS step from the current tokens (docs/THEORY.md section 3):
  1. one denoiser call gives ``p_i = softmax(z_i / temperature)`` at every masked ``i``;
  2. a rule scores the masked positions; the ``k_t`` best of each row form ``S`` (in order);
  3. each ``i`` in ``S`` gets ``x_i ~ p_i`` (or a tempered ``p_i``), independently.
The choice of ``S`` uses the predictions and randomness independent of the token draws. With
exact conditionals, one position per step and tokens at temperature 1, any such rule samples
the joint law exactly (Proposition 3).

Rules: ``random`` (uniform order), ``confidence`` (largest ``max_v p_i(v)``), ``margin``
(largest top-1 minus top-2), ``entropy`` (smallest ``H(p_i)``), ``halton`` (a fixed spread-out
order), ``moment`` (Gumbel-top-k on ``log sum_v p_i(v)**beta``, tokens from
``p_i**beta / m_i``), and ``ancestral`` (MDLM: random positions with binomial counts).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from unmask.checks import check_integer
from unmask.samplers.base import Denoiser, StepSampler, check_positive
from unmask.samplers.caching import reveal_with_partial_caching
from unmask.samplers.choose import (
    flat_rows,
    halton_order,
    masked_flat_rows,
    order_scores,
    scatter_scores,
    top_positions,
)
from unmask.samplers.gumbel import gumbel64, uniform64
from unmask.samplers.rows import draw_rows, row_stats
from unmask.samplers.schedules import MASKED_FRACTION

# How the choice temperature falls over the steps: ``jax`` = google-research/maskgit
# (``alpha * (1 - (t + 1) / T)``, 0 at the last step), ``pytorch`` = valeoai's ports
# (Maskgit-pytorch ``Trainer/vit.py`` and ``Sampler/confidence_sampler.py``:
# ``alpha * (1 - t / (T - 1))``, ``alpha`` at the first step), ``none`` = constant ``alpha``.
ANNEAL_RULES = ("jax", "pytorch", "none")
# The token temperature of partial caching's sub-steps (``ChooseThenSample.substep_anneal``)
SUBSTEP_ANNEAL = ("substep", "step")


def anneal_rule(anneal: bool | str) -> str:
    """The anneal rule named by ``anneal`` (``True`` = ``jax``, ``False`` = ``none``)."""
    rule = {True: "jax", False: "none"}[anneal] if isinstance(anneal, bool) else anneal
    if rule not in ANNEAL_RULES:
        raise ValueError(
            f"anneal={anneal!r} must be one of {', '.join(ANNEAL_RULES)} (or true = jax, false = none)"
        )
    return rule


def check_anneal(anneal: bool | str, steps: int) -> str:
    """``anneal_rule``, checked against the number of steps."""
    rule = anneal_rule(anneal)
    if rule == "pytorch" and steps < 2:
        raise ValueError(
            f"anneal='pytorch' needs steps >= 2 (the ports divide by steps - 1), got steps={steps}"
        )
    return rule


def annealed_alpha(alpha: float, anneal: bool | str, step: int, steps: int) -> float:
    """The choice temperature at ``step`` under the anneal rule (see ``ANNEAL_RULES``)."""
    rule = anneal_rule(anneal)
    if rule == "none" or math.isinf(alpha):
        return alpha
    if rule == "jax":
        return alpha * (1.0 - (step + 1) / steps)
    return alpha * (1.0 - step / (steps - 1))


def moment_beta(alpha_t: float) -> float:
    """``beta = 1 + 1 / alpha`` (``inf`` when ``alpha = 0``, ``1`` when ``alpha = inf``)."""
    return math.inf if alpha_t == 0 else 1.0 + 1.0 / alpha_t


@dataclass(frozen=True)
class ChooseThenSample(StepSampler):
    """Base of the CTS samplers; subclasses define ``position_scores`` (and token temperature).

    ``substeps`` (``r``): partial caching (``caching.py``); 1 = off. ``substep_anneal``: the
    token temperature of sub-step ``j`` of step ``t``: ``substep`` (default) = the annealed
    schedule's at position ``t * r + j`` of ``T * r`` steps, so the ``r`` sub-steps follow the
    temperatures of a plain run of ``T * r`` steps; ``step`` (the first release's rule) = the
    step's own temperature for every sub-step, so the last step's sub-steps all reveal at its
    lowest temperature (argmax under MaskGIT's annealing: 18 of MNIST's 49 codes at T = 4,
    r = 4). Samplers without an annealed token temperature are unaffected.
    """

    substeps: int = 1
    substep_anneal: str = "substep"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_integer("substeps", self.substeps, note=" (1 = no partial caching)")
        if self.substep_anneal not in SUBSTEP_ANNEAL:
            raise ValueError(
                f"substep_anneal={self.substep_anneal!r} must be one of {', '.join(SUBSTEP_ANNEAL)}"
            )

    def reveal(self, run, denoiser, cond, counts, step, generator):
        if self.substeps == 1:
            return super().reveal(run, denoiser, cond, counts, step, generator)
        return reveal_with_partial_caching(self, run, denoiser, cond, counts, step, generator)

    def position_scores(
        self, logits: torch.Tensor, rows: torch.Tensor, step: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Float64 score of each masked flat row; the best ``k_t`` per sequence are revealed."""
        raise NotImplementedError

    def token_temperature_at(self, step: int, steps: int | None = None) -> float:
        """Token temperature on top of ``temperature`` (0 = argmax) at ``step`` of ``steps``
        (default: the sampler's own)."""
        return 1.0

    def substep_token_temperature(self, step: int, substep: int) -> float:
        """The token temperature of sub-step ``substep`` of ``step`` (``substep_anneal``)."""
        if self.substep_anneal == "step" or self.substeps == 1:
            return self.token_temperature_at(step)
        return self.token_temperature_at(step * self.substeps + substep, self.steps * self.substeps)

    def choose(self, logits, masked, counts, step, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(positions, valid)``: the ``counts[b]`` best-scoring masked positions, best first."""
        rows = masked_flat_rows(masked)
        scores = self.position_scores(logits, rows, step, generator)
        return top_positions(scatter_scores(scores, rows, masked.shape), counts)

    def step(self, logits, masked, counts, step, generator):
        positions, valid = self.choose(logits, masked, counts, step, generator)
        chosen = flat_rows(positions, valid, masked.shape[1])
        uniforms = uniform64((chosen.shape[0],), generator, masked.device)
        temperature = self.temperature * self.token_temperature_at(step)
        tokens, _ = draw_rows(logits, chosen, uniforms, temperature=temperature)
        return positions, valid, tokens


@dataclass(frozen=True)
class RandomSampler(ChooseThenSample):
    """Uniformly random order; ``k_t`` from the schedule; tokens from ``p_i``."""

    def position_scores(self, logits, rows, step, generator):
        return uniform64((rows.shape[0],), generator, rows.device)


@dataclass(frozen=True)
class AncestralSampler(RandomSampler):
    """MDLM's reverse process (Sahoo et al. 2024), time-agnostic form.

    On the grid ``r_t = t / T`` with masked fraction ``f`` (``schedule``; MDLM's log-linear noise
    is ``linear``: ``f(r) = 1 - r``), each still-masked position is revealed at step ``t`` with
    probability ``(f(r_t) - f(r_{t+1})) / f(r_t)``, so the count per row is
    ``Binomial(masked, that probability)`` and the positions are uniform. A step that reveals
    nothing in any row needs no denoiser call (the denoiser does not see time), so ``nfe`` counts
    only the steps that change something.
    """

    schedule: str = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.counts != "unmask":
            raise ValueError(
                f"counts={self.counts!r}: ancestral draws its counts (binomial); leave counts unset"
            )

    def unmask_plan(self, num_masked, generator, span):
        fraction = MASKED_FRACTION[self.schedule](
            torch.arange(0, self.steps + 1, dtype=torch.float64) / self.steps
        ).clamp(0.0, 1.0)
        fraction[0], fraction[-1] = 1.0, 0.0
        remaining = num_masked.to(torch.float64).cpu()
        counts = torch.zeros(num_masked.shape[0], self.steps, dtype=torch.long)
        for t in range(self.steps):
            p = 1.0 if t == self.steps - 1 else float((fraction[t] - fraction[t + 1]) / fraction[t])
            p = min(max(p, 0.0), 1.0)
            drawn = torch.binomial(remaining, torch.full_like(remaining, p), generator=generator)
            counts[:, t] = drawn.long()
            remaining -= drawn
        return counts

    def check_length(self, length: int) -> None:
        """Any number of steps is allowed: steps without reveals cost nothing."""


@dataclass(frozen=True)
class ConfidenceSampler(ChooseThenSample):
    """Reveal the positions with the largest ``max_v p_i(v)`` (MaskGIT-style greedy order)."""

    def position_scores(self, logits, rows, step, generator):
        return -row_stats(logits, rows, temperature=self.stats_temperature).log_norm


@dataclass(frozen=True)
class MarginSampler(ChooseThenSample):
    """Reveal the positions with the largest margin ``p_i(top1) - p_i(top2)``."""

    def position_scores(self, logits, rows, step, generator):
        return row_stats(logits, rows, temperature=self.stats_temperature, margin=True).margin


@dataclass(frozen=True)
class EntropySampler(ChooseThenSample):
    """Reveal the positions with the smallest entropy ``H(p_i)``."""

    def position_scores(self, logits, rows, step, generator):
        return -row_stats(logits, rows, temperature=self.stats_temperature, entropy=True).entropy


def with_denoiser_grid(sampler, denoiser: Denoiser):
    """``sampler`` with ``grid`` set to the denoiser's ``grid`` (an image model's ``(H, W)``)
    when it has none of its own; a denoiser without a grid (text) keeps the 1-D order."""
    grid = getattr(denoiser, "grid", None)
    if sampler.grid is None and grid is not None:
        return dataclasses.replace(sampler, grid=tuple(grid))
    return sampler


@dataclass(frozen=True)
class HaltonSampler(ChooseThenSample):
    """Reveal positions in the fixed 2-D Halton order on ``grid = (H, W)`` (``None``: the
    denoiser's ``grid``, or the 1-D van der Corput order if it has none), ``k_t`` per step
    (Besnier et al. 2025; the orientation of valeoai/Halton-MaskGIT: base 2 gives the row, see
    ``choose.halton_order``); tokens from ``p_i``. With ``counts="halton_maskgit"`` and
    ``schedule="arccos"`` this is that code's ``HaltonSampler`` at constant temperature, from an
    all-mask start."""

    grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.grid is not None:
            if len(self.grid) != 2 or any(not isinstance(g, int) or g < 1 for g in self.grid):
                raise ValueError(f"grid={self.grid!r} must be a pair of positive integers (H, W)")
            object.__setattr__(self, "grid", tuple(self.grid))

    def for_denoiser(self, denoiser: Denoiser) -> HaltonSampler:
        return with_denoiser_grid(self, denoiser)

    def check_denoiser(self, denoiser: Denoiser) -> None:
        super().check_denoiser(denoiser)
        halton_order(denoiser.seq_len, self.grid)  # raises if grid does not match L

    def position_scores(self, logits, rows, step, generator):
        length = logits.shape[1]
        scores = order_scores(halton_order(length, self.grid)).to(rows.device)
        return scores[rows % length]


@dataclass(frozen=True)
class MomentSampler(ChooseThenSample):
    """The moment sampler (docs/THEORY.md sections 2-3): MaskGIT's choose-then-sample twin.

    At step ``t`` with ``alpha_t = alpha * (1 - (t + 1) / T)`` (or ``alpha`` if ``anneal=False``)
    and ``beta_t = 1 + 1 / alpha_t``: positions by Gumbel-top-k on
    ``log m_i = log sum_v p_i(v)**beta_t`` (Plackett-Luce with weights ``m_i``), then tokens from
    ``p_i**beta_t / m_i`` (temperature ``1 / beta_t``), or at ``token_temperature`` if given.
    ``alpha = inf`` is uniform order at temperature 1; ``alpha_t = 0`` is greedy
    max-probability order with argmax tokens. ``anneal``: ``jax``/true, ``pytorch`` or
    ``none``/false (``ANNEAL_RULES``). ``temperature = 0``: the order of ``log m_i`` on the
    untempered law without the Gumbel noise (ties: lowest position), argmax tokens.
    """

    alpha: float = 4.5
    anneal: bool | str = True
    token_temperature: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("alpha", self.alpha, allow_inf=True)
        check_anneal(self.anneal, self.steps)
        if self.token_temperature is not None:
            check_positive("token_temperature", self.token_temperature)

    def beta_at(self, step: int, steps: int | None = None) -> float:
        return moment_beta(annealed_alpha(self.alpha, self.anneal, step, steps or self.steps))

    def position_scores(self, logits, rows, step, generator):
        beta = self.beta_at(step)
        stats = row_stats(logits, rows, temperature=self.stats_temperature, moment_beta=beta)
        assert stats.log_moment is not None
        if math.isinf(beta) or self.greedy:  # beta = inf: the limit of Plackett-Luce on p_max**beta
            return stats.log_moment
        return stats.log_moment + gumbel64((rows.shape[0],), generator, rows.device)

    def token_temperature_at(self, step: int, steps: int | None = None) -> float:
        if self.token_temperature is not None:
            return self.token_temperature
        return 1.0 / self.beta_at(step, steps)
