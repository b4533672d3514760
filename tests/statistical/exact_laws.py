"""Exact laws of samplers, computed independently of the sampler code (by enumeration or
quadrature), to test the samplers against."""

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
    x = torch._standard_gamma(
        torch.full((rows, vocab), concentration, dtype=torch.float64), generator=generator
    )
    return x / x.sum(dim=1, keepdim=True)
