"""Exact laws of samplers, computed independently of the sampler code (by enumeration or
quadrature), to test the samplers against and to draw the figures that need no sampling.

- ``maskgit_one_by_one_law`` / ``moment_one_by_one_law``: the law over whole sequences of MaskGIT
  and of the moment sampler revealing one position per step on a ``TabularJoint`` (enumeration).
- ``maskgit_one_step_law``: the law of (position, token) revealed by one MaskGIT step with k = 1,
  by quadrature; ``moment_one_step_law``: the moment sampler's (docs/THEORY.md section 2).
- ``maskgit_k_step_inclusion`` / ``moment_k_step_inclusion``: the inclusion law of one step with
  budget k (the chance that position i is among the k revealed with token v), by quadrature over
  the score of i and a Poisson-binomial count of the others (``gumbel_top_k_inclusion``).
- ``implied_temperature``: the token temperature at which independent draws from the given
  predictions would have the given mean log-probability (used to read a temperature off the
  tokens a sampler committed).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

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


def gumbel_top_k_inclusion(
    marks: torch.Tensor,
    locations: torch.Tensor,
    ks: Sequence[int],
    grid_points: int = 4000,
    memory_bytes: int = 2**25,
) -> torch.Tensor:
    """``[len(ks), N, V]`` inclusion laws of a Gumbel-top-k over N positions with random marks.

    Position j draws a mark u with probability ``marks[j, u]``, then a score ``s_j`` that is
    Gumbel(0, 1) shifted by ``locations[j, u]``; positions are independent and the k largest
    scores are kept. Returns ``pi_k(i, v) = P(i among the k kept and its mark is v)``, so rows
    sum to ``P(i kept)`` and the total is k. Given ``s_i = c``, i is kept iff fewer than k
    others exceed c, a Poisson-binomial count with ``q_j(c) = sum_u marks[j, u]
    (1 - exp(-exp(locations[j, u] - c)))``; so ``pi_k(i, v) = marks[i, v] int f_{i,v}(c)
    P(count_{-i}(c) < k) dc`` with ``f_{i,v}`` the Gumbel density at ``locations[i, v]``. The
    leave-one-out count law is a prefix dynamic programme over positions j < i and a suffix one
    over j > i, each truncated at ``max(ks)`` counts (exact below it), combined per i as
    ``sum_a prefix_i[a] P(suffix_i <= k - 1 - a)``; no factor ``1 - q_i`` is divided out. The
    integral over c is a trapezoid rule on ``grid_points`` nodes over ``[min location - 5, max
    location + 40]``, the minimum taken over marks of probability at least 1e-18 (the Gumbel
    density loses under ``exp(-e^5)`` of its mass to the left of that range and under ``e^-40``
    to the right; marks rarer than 1e-18 lose at most their probability). The grid is processed
    in chunks so that each stored ``[N, chunk, max(ks)]`` array takes about ``memory_bytes``.
    """
    marks, locations = marks.double(), locations.double()
    n, _ = marks.shape
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1 or max(ks) > n:
        raise ValueError(f"every k must be in [1, N = {n}], got {ks}")
    depth = max(ks)
    present = marks >= 1e-18
    low = float(locations[present].min()) - 5.0
    high = float(locations[present].max()) + 40.0
    grid = torch.linspace(low, high, grid_points, dtype=torch.float64)
    step = float(grid[1] - grid[0])
    chunk = max(1, memory_bytes // (8 * n * depth))
    out = torch.zeros((len(ks), *marks.shape), dtype=torch.float64)
    for start in range(0, grid_points, chunk):
        c = grid[start : start + chunk]
        z = locations[None] - c[:, None, None]  # [T, N, V]
        x = z.exp()
        exceed = (marks[None] * -torch.expm1(-x)).sum(dim=2)  # q_j(c), [T, N]
        stay = (marks[None] * torch.exp(-x)).sum(dim=2)  # 1 - q_j(c), computed directly
        density = torch.exp(z - x)  # Gumbel density of s_i at c given mark v, [T, N, V]
        prefix = torch.empty((n, c.shape[0], depth), dtype=torch.float64)
        suffix = torch.empty_like(prefix)  # P(count over j > i <= b), cumulated over b
        count = torch.zeros((c.shape[0], depth), dtype=torch.float64)
        count[:, 0] = 1.0
        for i in range(n):
            prefix[i] = count
            count = add_position(count, stay[:, i, None], exceed[:, i, None])
        count = torch.zeros((c.shape[0], depth), dtype=torch.float64)
        count[:, 0] = 1.0
        for i in reversed(range(n)):
            suffix[i] = count.cumsum(dim=1)
            count = add_position(count, stay[:, i, None], exceed[:, i, None])
        weights = torch.full((c.shape[0],), step, dtype=torch.float64)
        if start == 0:
            weights[0] *= 0.5
        if start + chunk >= grid_points:
            weights[-1] *= 0.5
        for slot, k in enumerate(ks):
            kept = (prefix[:, :, :k] * suffix[:, :, :k].flip(-1)).sum(dim=2)  # P(count_{-i} < k), [N, T]
            out[slot] += torch.einsum("t,nt,tnv->nv", weights, kept, density)
    return marks[None] * out


def add_position(count: torch.Tensor, stay: torch.Tensor, exceed: torch.Tensor) -> torch.Tensor:
    """One step of the Poisson-binomial programme: the law of a count ``[T, depth]`` (truncated at
    ``depth``) after one more position that exceeds with probability ``exceed`` ``[T, 1]``."""
    return count * stay + torch.nn.functional.pad(count[:, :-1], (1, 0)) * exceed


def _one_or_many(law: torch.Tensor, k: int | Sequence[int]) -> torch.Tensor:
    return law[0] if isinstance(k, int) else law


def maskgit_k_step_inclusion(
    p: torch.Tensor, alpha: float, k: int | Sequence[int], grid_points: int = 4000
) -> torch.Tensor:
    """``[N, V]`` inclusion law of one MaskGIT step revealing k of N masked positions.

    ``pi(i, v) = P(i is among the k revealed and its token is v)``: proposals ``x~_j ~ p_j``,
    scores ``log p_j(x~_j) / alpha + g_j`` (the step's ranking), top k kept; that is
    ``gumbel_top_k_inclusion`` with marks ``p`` and locations ``log p / alpha``. For k = 1 it is
    ``maskgit_one_step_law``. ``k`` a sequence: ``[len(k), N, V]``, one quadrature for all.
    """
    p = p.double()
    ks = [k] if isinstance(k, int) else list(k)
    return _one_or_many(gumbel_top_k_inclusion(p, p.log() / alpha, ks, grid_points), k)


def moment_k_step_inclusion(
    p: torch.Tensor, beta: float, k: int | Sequence[int], grid_points: int = 4000
) -> torch.Tensor:
    """``[N, V]`` inclusion law of one moment-sampler step revealing k of N masked positions.

    Positions by Gumbel-top-k on ``log m_j``, ``m_j = sum_v p_j(v)**beta`` (Plackett-Luce without
    replacement with weights ``m_j``), each chosen token from ``p_j**beta / m_j``: that is
    ``gumbel_top_k_inclusion`` with marks ``p**beta / m`` and every location of row j ``log
    m_j``. For k = 1 it is ``moment_one_step_law``. ``k`` a sequence: ``[len(k), N, V]``.
    """
    powered = p.double() ** beta
    moments = powered.sum(dim=1, keepdim=True)
    ks = [k] if isinstance(k, int) else list(k)
    law = gumbel_top_k_inclusion(powered / moments, moments.log().expand_as(powered), ks, grid_points)
    return _one_or_many(law, k)


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
