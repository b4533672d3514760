"""Adaptive samplers: how many positions a step reveals depends on the predictions (or on
random event times), not on a fixed schedule.

- ``threshold`` (Fast-dLLM, Wu et al. 2025, arXiv 2505.22618, confidence-aware parallel
  decoding; NVlabs/Fast-dLLM ``llada/generate.py`` ``get_transfer_index`` and
  ``get_transfer_index_dynamic``): draw a proposal ``x~_i ~ softmax(z_i / temperature)`` at every
  masked position (argmax at ``temperature = 0``), with confidence ``c_i = p_i(x~_i)``, the
  UNTEMPERED probability of the proposal; rank by ``c_i`` (ties: lowest position). With
  ``threshold``: reveal the best position and every other with ``c_i >= threshold``. With
  ``factor`` (Fast-dLLM's dynamic rule): with ``c_(1) >= c_(2) >= ...`` over the ``n`` masked
  positions, let ``j`` be the first rank ``j >= 2`` with ``c_(j) < 1 - factor / (j + 1)``;
  reveal the best ``j - 1``, or all ``n`` if there is no such ``j`` or ``j = n`` (that code's
  bound check). The proposals of the chosen positions are their tokens.
- ``eb`` (EB-Sampler, Ben-Hamu et al. 2025, arXiv 2505.24857): order the masked positions by an
  error proxy (``entropy``: lowest ``H(p_i)`` first; ``confidence``: highest ``max_v p_i(v)``;
  ``margin``: highest top-1 minus top-2) and reveal the largest prefix ``U`` of that order with
  ``sum_{i in U} H(p_i) - max_{i in U} H(p_i) <= gamma``. The bound is on the entropies whatever
  the order. ``gamma = 0`` reveals one position per step (two or more only if all but one have
  zero entropy), so with exact conditionals it samples the joint exactly (Proposition 3).
- ``first_hitting`` (Zheng et al. 2024, arXiv 2409.02908): MDLM's reverse process simulated
  event by event. With ``n`` positions masked at noise level ``y`` (the masked fraction of the
  ``schedule``; 1 at the start) the next reveal happens at level ``y * u**(1/n)``,
  ``u ~ U(0, 1)`` (the largest of ``n`` independent uniform levels), at a uniformly random masked
  position. The denoiser does not see time, so with ``max_steps = None`` every event gets its own
  denoiser call: one position per call in uniformly random order, exact, the ``steps -> inf``
  limit of ``ancestral``. With ``max_steps = T`` the events are snapped to ``ancestral``'s grid of
  ``T`` steps: the events whose level falls in the same grid interval share one call and are
  revealed together, so the law is exactly that of ``ancestral`` with ``steps = T`` and the
  same ``schedule``, drawn event by event.

For ``eb`` and ``first_hitting``, tokens are drawn from ``p_i = softmax(z_i / temperature)`` at
the chosen positions, independently (argmax at ``temperature = 0``, where the statistics are those
of the untempered law).

``max_steps`` (``threshold``, ``eb``) bounds the number of denoiser calls: step ``t``
(0-based) of a run with budget ``T = max_steps`` (``None`` = the sequence length ``L``) reveals
at least ``ceil(remaining / (T - t))`` positions of a row (its best ones in the rule's order), so
every row is done after at most ``T`` steps. With ``T >= L`` this floor is 1: the rule alone
decides. Rows are independent: counts and orders are per row; a row that is done waits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from unmask.checks import check_integer, is_number
from unmask.samplers.base import Denoiser, SamplerBase, Trajectory, non_finite_error
from unmask.samplers.choose import flat_rows, masked_flat_rows, scatter_scores, top_positions
from unmask.samplers.gumbel import uniform64
from unmask.samplers.proposals import proposals_by_row, propose
from unmask.samplers.rows import NonFiniteLogitsError, draw_rows, row_stats
from unmask.samplers.schedules import MASKED_FRACTION, check_schedule

EB_PROXIES = ("entropy", "confidence", "margin")


def check_max_steps(max_steps: int | None) -> None:
    check_integer("max_steps", max_steps, or_none="None (= the sequence length)")


def reveal_at(
    run: Trajectory,
    logits: torch.Tensor,
    positions: torch.Tensor,
    valid: torch.Tensor,
    step: int,
    generator: torch.Generator,
    temperature: float,
) -> None:
    """Draw tokens from ``softmax(z / temperature)`` at the valid ``positions`` and commit them."""
    chosen = flat_rows(positions, valid, run.length)
    uniforms = uniform64((chosen.shape[0],), generator, run.device)
    try:
        tokens, _ = draw_rows(logits, chosen, uniforms, temperature=temperature)
    except NonFiniteLogitsError as err:
        raise non_finite_error(err, run.length, step) from None
    run.commit(step, positions, valid, tokens)


@dataclass(frozen=True)
class AdaptiveSampler(SamplerBase):
    """One denoiser call per step; ``plan`` gives an order and a wanted count per row."""

    max_steps: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_max_steps(self.max_steps)

    def plan(
        self, logits: torch.Tensor, masked: torch.Tensor, step: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(scores [B, L] float64, wanted [B], proposals)``: the best positions have the largest
        scores (``-inf`` off the masked set); the rule wants to reveal the ``wanted[b]`` best.
        ``proposals``: ``[B * L]`` tokens already drawn at the masked flat rows (sample-then-choose
        rules), or ``None`` to draw the tokens of the chosen positions afterwards."""
        raise NotImplementedError

    def generate(self, run: Trajectory, denoiser: Denoiser, cond: Any, generator: torch.Generator) -> None:
        budget = self.max_steps if self.max_steps is not None else run.length
        for step in range(budget):
            left = run.masked.sum(dim=1)
            if not bool(left.any()):
                return
            logits = run.predict(denoiser, cond, step)
            try:
                scores, wanted, proposals = self.plan(logits, run.masked, step, generator)
            except NonFiniteLogitsError as err:
                raise non_finite_error(err, run.length, step) from None
            floor = torch.div(left + (budget - step - 1), budget - step, rounding_mode="floor").clamp(min=1)
            counts = torch.minimum(torch.maximum(wanted, floor), left)
            order, valid = top_positions(scores, counts)
            if proposals is None:
                reveal_at(run, logits, order, valid, step, generator, self.temperature)
            else:
                run.commit(step, order, valid, proposals[flat_rows(order, valid, run.length)])


def per_row_count(flags: torch.Tensor, rows: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``[B]`` number of ``True`` flags among the flat ``rows`` of each sequence."""
    counts = torch.zeros(shape[0], dtype=torch.long, device=rows.device)
    return counts.index_add_(0, rows[flags] // shape[1], torch.ones_like(rows[flags]))


@dataclass(frozen=True)
class ThresholdSampler(AdaptiveSampler):
    """Fast-dLLM's confidence-aware parallel decoding (Wu et al. 2025; see the module doc).

    ``threshold``: reveal the most confident proposal and every proposal whose untempered
    probability is ``>= threshold`` (``threshold = 1`` is one position per step unless some
    are certain); ``factor`` instead of ``threshold``: Fast-dLLM's dynamic rule. ``max_steps``
    (this project's addition; ``None`` = Fast-dLLM) adds the floor of the module doc.
    """

    threshold: float | None = 0.9
    factor: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        t, f = self.threshold, self.factor
        if f is not None:
            if t is not None:
                raise ValueError(
                    f"threshold={t!r} and factor={f!r}: give one (factor is Fast-dLLM's dynamic rule; "
                    "set threshold to null to use it)"
                )
            if not is_number(f) or not math.isfinite(f) or f <= 0:
                raise ValueError(f"factor={f!r} must be a finite number > 0")
        elif not is_number(t) or math.isnan(t) or not 0 < t <= 1:
            raise ValueError(f"threshold={t!r} must be a number in (0, 1] (or null with a factor)")

    def plan(self, logits, masked, step, generator):
        rows = masked_flat_rows(masked)
        proposals, log_conf = propose(logits, rows, self.temperature, generator)
        scores = scatter_scores(log_conf, rows, masked.shape)
        if self.factor is None:
            wanted = per_row_count(log_conf.exp() >= self.threshold, rows, masked.shape)
        else:
            wanted = self.factor_counts(scores, masked.sum(dim=1))
        return scores, wanted, proposals_by_row(proposals, rows, masked)

    def factor_counts(self, scores: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
        """Fast-dLLM's dynamic count per row (module doc), from the ``[B, L]`` log-confidences."""
        assert self.factor is not None
        ordered = scores.sort(dim=1, descending=True).values.exp()  # masked first, then 0
        rank = torch.arange(ordered.shape[1], device=scores.device)  # 0-based: rank j - 1
        bound = 1.0 - self.factor / (rank + 2.0)
        bound[0] = -1.0
        fails = (ordered < bound[None, :]) & (rank[None, :] < left[:, None])
        first_fail = torch.where(fails.any(dim=1), fails.long().argmax(dim=1), left)
        return torch.where(first_fail >= left - 1, left, first_fail)


@dataclass(frozen=True)
class EntropyBoundedSampler(AdaptiveSampler):
    """EB-Sampler (Ben-Hamu et al. 2025): the largest prefix of the ``proxy`` order whose entropies
    satisfy ``sum H - max H <= gamma`` (at least one position per step; see the module doc)."""

    gamma: float = 0.1
    proxy: str = "entropy"

    def __post_init__(self) -> None:
        super().__post_init__()
        g = self.gamma
        if not is_number(g) or math.isnan(g) or g < 0:
            raise ValueError(f"gamma={g!r} must be a number >= 0 (0 = one position per step)")
        if self.proxy not in EB_PROXIES:
            raise ValueError(f"proxy={self.proxy!r} must be one of {', '.join(EB_PROXIES)}")

    def plan(self, logits, masked, step, generator):
        rows = masked_flat_rows(masked)
        stats = row_stats(
            logits, rows, temperature=self.stats_temperature, entropy=True, margin=self.proxy == "margin"
        )
        assert stats.entropy is not None
        if self.proxy == "entropy":
            score = -stats.entropy
        elif self.proxy == "confidence":
            score = -stats.log_norm
        else:
            assert stats.margin is not None
            score = stats.margin
        scores = scatter_scores(score, rows, masked.shape)
        entropy = torch.zeros(masked.numel(), dtype=torch.float64, device=masked.device)
        entropy[rows] = stats.entropy.clamp(min=0.0)
        order = scores.argsort(dim=1, descending=True, stable=True)
        ordered = entropy.view(masked.shape).gather(1, order)
        excess = ordered.cumsum(dim=1) - ordered.cummax(dim=1).values  # non-decreasing along the order
        wanted = (excess <= self.gamma).sum(dim=1)
        return scores, wanted, None


@dataclass(frozen=True)
class FirstHittingSampler(SamplerBase):
    """The first-hitting form of MDLM's sampler (Zheng et al. 2024); see the module doc.

    ``max_steps = None``: exact, one position per denoiser call. ``max_steps = T``: events grouped
    on ``ancestral``'s ``T``-step grid of the masked-fraction ``schedule`` (at most ``T`` calls).
    """

    schedule: str = "linear"
    max_steps: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_schedule(self.schedule)
        check_max_steps(self.max_steps)

    def reveal_random(self, run, denoiser, cond, counts, step, generator) -> None:
        """One call; reveal ``counts[b]`` uniformly random masked positions of each row."""
        logits = run.predict(denoiser, cond, step)
        rows = masked_flat_rows(run.masked)
        scores = scatter_scores(uniform64((rows.shape[0],), generator, run.device), rows, run.masked.shape)
        positions, valid = top_positions(scores, counts)
        reveal_at(run, logits, positions, valid, step, generator, self.temperature)

    def grid_levels(self) -> torch.Tensor:
        """Masked fraction ``f(t / T)`` at the ``T + 1`` grid points (``f(0) = 1``, ``f(1) = 0``)."""
        steps = self.max_steps
        assert steps is not None
        levels = MASKED_FRACTION[self.schedule](torch.arange(steps + 1, dtype=torch.float64) / steps)
        levels = levels.clamp(0.0, 1.0)
        levels[0], levels[-1] = 1.0, 0.0
        return levels

    def generate(self, run: Trajectory, denoiser: Denoiser, cond: Any, generator: torch.Generator) -> None:
        if self.max_steps is None:
            step = 0
            while bool(run.masked.any()):
                self.reveal_random(run, denoiser, cond, run.masked.any(dim=1).long(), step, generator)
                step += 1
            return
        # Grid step t holds the levels in [f_{t+1}, f_t): cell(y) = #{j >= 1 : f_j > y}.
        ascending = self.grid_levels()[1:].flip(0).contiguous()
        steps = self.max_steps

        def cell(level: torch.Tensor) -> torch.Tensor:
            return steps - torch.searchsorted(ascending, level, right=True)

        left = run.masked.sum(dim=1).cpu()
        u = uniform64((run.batch_size,), generator, "cpu")
        level = torch.where(left > 0, u ** (1.0 / left.clamp(min=1)), 1.0)  # first event of each row
        while bool((left > 0).any()):
            active = left > 0
            current = int(cell(level)[active].min())
            counts = torch.zeros_like(left)
            here = active & (cell(level) == current)
            while bool(here.any()):
                counts += here.long()
                rest = left - counts
                u = uniform64((run.batch_size,), generator, "cpu")
                more = here & (rest > 0)
                level = torch.where(more, level * u ** (1.0 / rest.clamp(min=1)), level)
                here = more & (cell(level) == current)
            self.reveal_random(run, denoiser, cond, counts.to(run.device), current, generator)
            left = left - counts
