"""ReMDM: remasking samplers for MDLM-style models (Wang et al. 2025, arXiv 2503.00307).

MDLM's reverse step from time ``t`` to ``s < t`` (``alpha`` = the fraction revealed; here
``alpha(t) = 1 - f(1 - t)`` with ``f`` the masked-fraction ``schedule`` on progress ``1 - t``)
never changes a revealed token. ReMDM lets a revealed token be masked again with probability
``sigma_t``, and raises the unmasking probability so that the masked fraction still follows the
schedule on average:
  - a revealed position is remasked with probability ``sigma_t``;
  - a masked position is revealed with probability ``(alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t)``,
    its token drawn from ``p_i`` (the denoiser's prediction on the state at ``t``);
with ``0 <= sigma_t <= sigma_max = min(1, (1 - alpha_s) / alpha_t)`` (so both are probabilities).
``sigma_t = 0`` is MDLM (``ancestral``). Rules for ``sigma_t`` (``remask``):
  - ``cap``: ``min(eta, sigma_max)``;
  - ``rescale``: ``eta * sigma_max``;
  - ``conf``: per revealed position ``l``, ``sigma_max * softmax_l(-psi_l)`` over the row's revealed
    positions, ``psi_l`` the probability its token had when it was drawn (untempered for an
    argmax draw at ``temperature = 0``): unconfident tokens are remasked first (``eta`` is not
    used). Masked positions then use the row's mean ``sigma``
    (a reconstruction detail: it keeps the expected masked fraction on the schedule).
Remasking is on only while ``t_off <= s`` and ``t <= t_on`` (the window; default the whole run).
``alpha_on`` (ReMDM-loop): ``alpha`` rises to ``alpha_on`` along the schedule until ``t_on``,
stays at ``alpha_on`` on ``[t_off, t_on]`` (the loop: as many reveals as remasks on average),
then rises to 1; ``None`` = the plain schedule. The last step (``s = 0``) has ``sigma_max = 0``
and reveals every masked position, so no mask is left.

Only positions this run revealed are remasked (never ``init`` tokens); each remasking is
traced as a ``kind="remask"`` record. A step in which no position is revealed needs no denoiser
call (the denoiser does not see time), so ``nfe <= steps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from unmask.checks import check_integer, is_number
from unmask.samplers.base import Denoiser, SamplerBase, Trajectory, check_positive, non_finite_error
from unmask.samplers.choose import flat_rows, mask_positions
from unmask.samplers.gumbel import uniform64
from unmask.samplers.rows import NonFiniteLogitsError, draw_rows, row_stats
from unmask.samplers.schedules import MASKED_FRACTION, check_schedule

REMASK_RULES = ("cap", "rescale", "conf")


def check_unit(name: str, value: float, *, open_right: bool = False) -> None:
    if not is_number(value) or math.isnan(value):
        raise ValueError(f"{name}={value!r} must be a number")
    if not 0 <= value <= 1 or (open_right and value == 1):
        raise ValueError(f"{name}={value!r} must be in [0, {'1)' if open_right else '1]'}")


@dataclass(frozen=True)
class ReMDMSampler(SamplerBase):
    """ReMDM (see the module doc): ``steps`` on the time grid ``t = 1 - k / steps``."""

    steps: int = 16
    schedule: str = "linear"
    remask: str = "cap"
    eta: float = 0.02
    t_on: float = 1.0
    t_off: float = 0.0
    alpha_on: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_integer("steps", self.steps)
        check_schedule(self.schedule)
        if self.remask not in REMASK_RULES:
            raise ValueError(f"remask={self.remask!r} must be one of {', '.join(REMASK_RULES)}")
        check_unit("eta", self.eta)
        check_unit("t_on", self.t_on)
        check_unit("t_off", self.t_off)
        if self.t_off > self.t_on:
            raise ValueError(f"t_off={self.t_off!r} must be <= t_on={self.t_on!r}")
        if self.alpha_on is not None:
            check_positive("alpha_on", self.alpha_on)
            check_unit("alpha_on", self.alpha_on, open_right=True)

    def alpha(self, t: float) -> float:
        """Fraction revealed at time ``t`` (1 = all masked, 0 = done)."""
        if t >= 1.0:
            return 0.0
        if t <= 0.0:
            return 1.0
        f = MASKED_FRACTION[self.schedule]

        def revealed(progress: float) -> float:
            return 1.0 - min(max(float(f(torch.tensor(progress, dtype=torch.float64))), 0.0), 1.0)

        if self.alpha_on is None:
            return revealed(1.0 - t)
        if t > self.t_on:  # rise to alpha_on on [t_on, 1]
            return self.alpha_on * revealed((1.0 - t) / (1.0 - self.t_on))
        if t >= self.t_off:  # the loop
            return self.alpha_on
        return self.alpha_on + (1.0 - self.alpha_on) * revealed((self.t_off - t) / self.t_off)

    def sigma(self, alpha_t: float, alpha_s: float, t: float, s: float) -> float:
        """``sigma_t`` of ``cap``/``rescale`` (``sigma_max`` for ``conf``), 0 outside the window."""
        if alpha_t <= 0.0 or not (self.t_off <= s and t <= self.t_on):
            return 0.0
        sigma_max = min(1.0, (1.0 - alpha_s) / alpha_t)
        if self.remask == "cap":
            return min(self.eta, sigma_max)
        if self.remask == "rescale":
            return self.eta * sigma_max
        return sigma_max

    def generate(self, run: Trajectory, denoiser: Denoiser, cond: Any, generator: torch.Generator) -> None:
        own = run.masked.clone()  # positions this run generates (and may remask)
        psi = torch.zeros(run.masked.shape, dtype=torch.float64, device=run.device)
        for step in range(self.steps):
            t, s = 1.0 - step / self.steps, 1.0 - (step + 1) / self.steps
            alpha_t, alpha_s = self.alpha(t), self.alpha(s)
            sigma = self.sigma(alpha_t, alpha_s, t, s)
            revealed = own & ~run.masked
            remask_prob = torch.zeros_like(psi)
            if sigma > 0:
                if self.remask == "conf":
                    weights = torch.where(revealed, -psi, -math.inf).softmax(dim=1).nan_to_num_(0.0)
                    remask_prob = sigma * weights
                else:
                    remask_prob = torch.where(revealed, sigma, 0.0)
            mean_sigma = remask_prob.sum(dim=1) / revealed.sum(dim=1).clamp(min=1)
            if step == self.steps - 1 or alpha_t >= 1.0:
                reveal_prob = torch.ones_like(mean_sigma)
            else:
                reveal_prob = ((alpha_s - (1.0 - mean_sigma) * alpha_t) / (1.0 - alpha_t)).clamp(0.0, 1.0)
            unmask = run.masked & (uniform64(run.masked.shape, generator, run.device) < reveal_prob[:, None])
            remask = revealed & (uniform64(run.masked.shape, generator, run.device) < remask_prob)
            if bool(unmask.any()):
                logits = run.predict(denoiser, cond, step)
                positions, valid = mask_positions(unmask)
                chosen = flat_rows(positions, valid, run.length)
                uniforms = uniform64((chosen.shape[0],), generator, run.device)
                try:
                    tokens, log_prob = draw_rows(logits, chosen, uniforms, temperature=self.temperature)
                    if self.greedy:  # psi of an argmax token: its untempered probability
                        log_prob = -row_stats(logits, chosen).log_norm
                except NonFiniteLogitsError as err:
                    raise non_finite_error(err, run.length, step) from None
                run.commit(step, positions, valid, tokens)
                psi.view(-1)[chosen] = log_prob.exp()
            if bool(remask.any()):
                run.remask(step, *mask_positions(remask))
