"""The hybrid exploration/exploitation sampler (docs/THEORY.md section 4; a reconstruction).

One CTS step revealing ``S = A u B`` with independent draws errs by the conditional total
correlation ``TC(X_S | x_obs) <= sum_{i in A} H(X_i | x_obs) + TC(X_B | x_obs)`` (Proposition 4):
``A`` should be confident positions (exploitation) and ``B`` weakly dependent, spread-out
positions (exploration). With budget ``k_t`` and ``gamma`` in [0, 1], a hybrid step takes
  1. the first ``m_t = ceil(gamma * k_t)`` masked positions of the exploitation order
     (``exploit``: ``moment`` = Gumbel-top-k on ``log sum_v p_i(v)**beta_t``, or ``confidence``);
  2. then the first positions of the exploration order (``explore``: the fixed ``halton`` order on
     ``grid``, or a uniformly ``random`` order) not yet taken, up to ``k_t``;
and samples the tokens as the exploitation rule does (``p**beta_t`` for ``moment`` unless
``token_temperature`` is given, ``p`` for ``confidence``). ``gamma = 1`` is pure exploitation,
``gamma = 0`` pure exploration. The paper's exact split is not public: ``gamma`` (a fraction of
each step's budget, rounded up) is this project's parameterisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from unmask.samplers.base import Denoiser, check_positive
from unmask.samplers.choose import masked_flat_rows, scatter_scores, top_positions
from unmask.samplers.cts import (
    ChooseThenSample,
    ConfidenceSampler,
    HaltonSampler,
    MomentSampler,
    RandomSampler,
    with_denoiser_grid,
)

EXPLOIT_RULES = ("moment", "confidence")
EXPLORE_RULES = ("halton", "random")


@dataclass(frozen=True)
class HybridSampler(ChooseThenSample):
    gamma: float = 0.5
    exploit: str = "moment"
    explore: str = "halton"
    alpha: float = 4.5
    anneal: bool | str = True
    token_temperature: float | None = None
    grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            isinstance(self.gamma, bool)
            or not isinstance(self.gamma, (int, float))
            or not 0 <= self.gamma <= 1
        ):
            raise ValueError(f"gamma={self.gamma!r} must be a number in [0, 1]")
        if self.exploit not in EXPLOIT_RULES:
            raise ValueError(f"exploit={self.exploit!r} must be one of {', '.join(EXPLOIT_RULES)}")
        if self.explore not in EXPLORE_RULES:
            raise ValueError(f"explore={self.explore!r} must be one of {', '.join(EXPLORE_RULES)}")
        check_positive("alpha", self.alpha, allow_inf=True)
        if self.token_temperature is not None:
            check_positive("token_temperature", self.token_temperature)
        self.exploration_rule()  # validates grid

    def exploitation_rule(self) -> ChooseThenSample:
        common = {"steps": self.steps, "schedule": self.schedule, "temperature": self.temperature}
        if self.exploit == "moment":
            return MomentSampler(
                **common, alpha=self.alpha, anneal=self.anneal, token_temperature=self.token_temperature
            )
        return ConfidenceSampler(**common)

    def exploration_rule(self) -> ChooseThenSample:
        common = {"steps": self.steps, "schedule": self.schedule, "temperature": self.temperature}
        if self.explore == "halton":
            return HaltonSampler(**common, grid=None if self.grid is None else tuple(self.grid))
        return RandomSampler(**common)

    def for_denoiser(self, denoiser: Denoiser) -> HybridSampler:
        return with_denoiser_grid(self, denoiser)

    def check_denoiser(self, denoiser: Denoiser) -> None:
        super().check_denoiser(denoiser)
        self.exploration_rule().check_denoiser(denoiser)

    def exploit_counts(self, counts: torch.Tensor) -> torch.Tensor:
        """``m_t = ceil(gamma * k_t)`` per row (a 1e-9 slack keeps e.g. 0.3 * 10 at 3)."""
        return torch.ceil(counts.double() * self.gamma - 1e-9).clamp_(min=0).long()

    def choose(self, logits, masked, counts, step, generator):
        rows = masked_flat_rows(masked)
        exploit_k = self.exploit_counts(counts)
        explore_k = counts - exploit_k
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        taken = torch.zeros_like(masked)
        if bool(exploit_k.any()):  # no randomness is drawn for a rule that takes nothing
            scores = self.exploitation_rule().position_scores(logits, rows, step, generator)
            first, first_valid = top_positions(scatter_scores(scores, rows, masked.shape), exploit_k)
            taken.scatter_(1, first, first_valid)
            parts.append((first, first_valid))
        if bool(explore_k.any()):
            scores = scatter_scores(
                self.exploration_rule().position_scores(logits, rows, step, generator), rows, masked.shape
            )
            scores[taken] = -math.inf
            parts.append(top_positions(scores, explore_k))
        positions = torch.cat([p for p, _ in parts], dim=1)
        valid = torch.cat([v for _, v in parts], dim=1)
        order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)[:, : int(counts.max())]
        return positions.gather(1, order), valid.gather(1, order)

    def token_temperature_at(self, step: int, steps: int | None = None) -> float:
        return self.exploitation_rule().token_temperature_at(step, steps)
