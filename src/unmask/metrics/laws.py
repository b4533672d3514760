"""Exact laws of samplers, computed independently of the sampler code (by enumeration or
quadrature), to test the samplers against and to draw the figures that need no sampling.

- ``maskgit_one_by_one_law`` / ``moment_one_by_one_law``: the law over whole sequences of MaskGIT
  and of the moment sampler revealing one position per step on a ``TabularJoint`` (enumeration).
- ``maskgit_one_step_law``: the law of (position, token) revealed by one MaskGIT step with k = 1,
  by quadrature; ``moment_one_step_law``: the moment sampler's (docs/THEORY.md section 2).
- ``implied_temperature``: the token temperature at which independent draws from the given
  predictions would have the given mean log-probability (used to read a temperature off the
  tokens a sampler committed).
"""

from __future__ import annotations

import itertools
import math

import torch

from unmask.models.oracle import TabularJoint


def maskgit_one_by_one_law(joint: TabularJoint, alpha: float) -> torch.Tensor:
    """Law over sequences of MaskGIT with one position per step and a fixed choice temperature.

    At a state with masked set M, proposals x~_j ~ p_j for all j in M; position i is kept with
    probability w_i / sum_j w_j, w_j = p_j(x~_j)**(1/alpha) (Gumbel-top-1). Enumerates all
    proposal vectors at every reachable state.
    """
    vocab, length = joint.vocab_size, joint.seq_len
    law = torch.zeros(vocab**length, dtype=torch.float64)
    frontier = {tuple([vocab] * length): 1.0}
    while frontier:
        nxt: dict[tuple, float] = {}
        for state, mass in frontier.items():
            masked = [j for j in range(length) if state[j] == vocab]
            if not masked:
                law[int(joint.index(torch.tensor([state])))] += mass
                continue
            p = joint.conditionals(torch.tensor([state]))[0].exp()  # [L, V]
            for proposal in itertools.product(range(vocab), repeat=len(masked)):
                prob = math.prod(float(p[j, v]) for j, v in zip(masked, proposal, strict=True))
                if prob == 0:
                    continue
                weights = [float(p[j, v]) ** (1 / alpha) for j, v in zip(masked, proposal, strict=True)]
                total = sum(weights)
                for (j, v), w in zip(zip(masked, proposal, strict=True), weights, strict=True):
                    child = list(state)
                    child[j] = v
                    nxt[tuple(child)] = nxt.get(tuple(child), 0.0) + mass * prob * w / total
        frontier = nxt
    return law


def moment_one_by_one_law(
    joint: TabularJoint, alpha: float, token_temperature: float | None = None
) -> torch.Tensor:
    """Law over sequences of the moment sampler with one position per step, fixed ``alpha``.

    At a state with masked set M: position i with probability m_i / sum_j m_j, m_i = sum_v
    p_i(v)**beta (beta = 1 + 1/alpha), then its token from p_i**(1/tau) normalised, tau =
    ``token_temperature`` (None: 1/beta, the sampler's default).
    """
    vocab, length = joint.vocab_size, joint.seq_len
    beta = 1.0 + 1.0 / alpha
    power = beta if token_temperature is None else 1.0 / token_temperature
    law = torch.zeros(vocab**length, dtype=torch.float64)
    frontier = {tuple([vocab] * length): 1.0}
    while frontier:
        nxt: dict[tuple, float] = {}
        for state, mass in frontier.items():
            masked = [j for j in range(length) if state[j] == vocab]
            if not masked:
                law[int(joint.index(torch.tensor([state])))] += mass
                continue
            p = joint.conditionals(torch.tensor([state]))[0].exp()[masked]  # [|M|, V]
            moments = (p**beta).sum(dim=1)
            choose = moments / moments.sum()
            tokens = p**power / (p**power).sum(dim=1, keepdim=True)
            for a, j in enumerate(masked):
                for v in range(vocab):
                    weight = float(choose[a] * tokens[a, v])
                    if weight == 0:
                        continue
                    child = list(state)
                    child[j] = v
                    nxt[tuple(child)] = nxt.get(tuple(child), 0.0) + mass * weight
        frontier = nxt
    return law


def maskgit_one_step_law(p: torch.Tensor, alpha: float, grid_points: int = 6000) -> torch.Tensor:
    """``[N, V]`` law of (position, token) revealed by one MaskGIT step with k = 1.

    ``P(i, v) = p_i(v) * E[w / (w + S)]`` with ``w = p_i(v)**(1/alpha)`` and ``S`` the sum of the
    other positions' proposal weights; ``w / (w + S) = int_0^inf w exp(-t (w + S)) dt`` and
    ``E exp(-t S) = prod_{j != i} phi_j(t)``, ``phi_j(t) = sum_u p_j(u) exp(-t p_j(u)**(1/alpha))``.
    The integral is a trapezoid rule in ``s = log t`` over [-25, 30].
    """
    p = p.double()
    w = p ** (1 / alpha)  # [N, V]
    s = torch.linspace(-25, 30, grid_points, dtype=torch.float64)
    t = s.exp()
    law = torch.zeros_like(p)
    for start in range(0, grid_points, 500):
        ts = t[start : start + 500]
        log_phi = torch.log((p[None] * torch.exp(-ts[:, None, None] * w[None])).sum(dim=2))  # [T, N]
        zero = torch.zeros_like(log_phi[:, :1])
        before = torch.cat([zero, log_phi.cumsum(dim=1)[:, :-1]], dim=1)  # sum over j < i
        after = torch.cat([log_phi.flip(1).cumsum(dim=1).flip(1)[:, 1:], zero], dim=1)  # j > i
        log_others = before + after  # [T, N], no inf - inf
        integrand = (
            w[None] * torch.exp(-ts[:, None, None] * w[None] + log_others[:, :, None]) * ts[:, None, None]
        )
        weights = torch.full((ts.shape[0],), float(s[1] - s[0]), dtype=torch.float64)
        if start == 0:
            weights[0] *= 0.5
        if start + 500 >= grid_points:
            weights[-1] *= 0.5
        law += (integrand * weights[:, None, None]).sum(dim=0)
    return p * law


def moment_one_step_law(p: torch.Tensor, beta: float) -> torch.Tensor:
    """``P(i, v) = p_i(v)**beta / sum_j m_j(beta)``: the moment sampler's one-step law, k = 1."""
    powered = p.double() ** beta
    return powered / powered.sum()


def dirichlet_rows(rows: int, vocab: int, concentration: float, generator: torch.Generator) -> torch.Tensor:
    """``[rows, vocab]`` float64 probability rows, each from a symmetric Dirichlet."""
    x = torch._standard_gamma(
        torch.full((rows, vocab), concentration, dtype=torch.float64), generator=generator
    )
    return x / x.sum(dim=1, keepdim=True)


def tempered_mean_log_prob(log_p: torch.Tensor, temperature: float) -> torch.Tensor:
    """``E_{q}[log p]`` per row of ``log_p`` ``[n, V]``, with ``q = softmax(log p / temperature)``."""
    q = torch.softmax(log_p.double() / temperature, dim=-1)
    finite = torch.where(torch.isfinite(log_p), log_p.double(), torch.zeros_like(log_p, dtype=torch.float64))
    return (q * finite).sum(dim=-1)


def implied_temperature(
    log_p: torch.Tensor, mean_log_prob: float, low: float = 1e-3, high: float = 1e3
) -> float:
    """The temperature ``tau`` at which the mean over rows of ``E_{softmax(log p / tau)}[log p]``
    equals ``mean_log_prob`` (bisection in ``log tau``; the mean is increasing as ``tau``
    falls). Clipped to ``[low, high]``; ``nan`` for no rows."""
    if log_p.shape[0] == 0:
        return math.nan
    lo, hi = math.log(low), math.log(high)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(tempered_mean_log_prob(log_p, math.exp(mid)).mean()) > mean_log_prob:
            lo = mid  # still too sharp: raise the temperature
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))
