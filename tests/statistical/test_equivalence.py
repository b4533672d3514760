"""MaskGIT vs the moment sampler for one step with k = 1 (docs/THEORY.md section 2).

Exact laws: ``maskgit_one_step_law`` (quadrature, independent of the sampler code) and the moment
law ``p_i(v)**beta / sum_j m_j(beta)``, beta = 1 + 1/alpha. Sampler checks are G-tests with
p > 1e-3 as "consistent"; seeds fixed.
"""

import math

import pytest
import torch

from unmask.metrics.exact import g_test
from unmask.metrics.laws import dirichlet_rows, maskgit_one_step_law, moment_one_step_law
from unmask.samplers import build


def g_test_p_value(counts: torch.Tensor, law: torch.Tensor) -> float:
    return g_test(counts, law)[1]


def one_step_counts(name: str, probs: torch.Tensor, n: int, seed: int, batch: int = 10_000, **params):
    """Counts ``[N, V]`` of (position, token) revealed by the first step with k = 1."""
    sampler = build(name, steps=probs.shape[0], anneal=False, **params)
    generator = torch.Generator().manual_seed(seed)
    counts = torch.zeros(probs.shape, dtype=torch.float64)
    logits = probs.log().float()
    for start in range(0, n, batch):
        b = min(batch, n - start)
        masked = torch.ones(b, probs.shape[0], dtype=torch.bool)
        positions, valid, tokens = sampler.step(
            logits.expand(b, -1, -1), masked, torch.ones(b, dtype=torch.long), 0, generator
        )
        counts.index_put_((positions[valid], tokens), torch.ones(b, dtype=torch.float64), accumulate=True)
    return counts


def test_exact_one_step_gap_shrinks_like_one_over_n():
    # alpha = 1, V = 16, Dirichlet(0.3) predictions, 3 draws per N (seed 0)
    g = torch.Generator().manual_seed(0)
    sizes, gaps = [16, 64, 256], []
    for n in sizes:
        tv = []
        for _ in range(3):
            p = dirichlet_rows(n, 16, 0.3, g)
            exact = maskgit_one_step_law(p, alpha=1.0)
            assert math.isclose(float(exact.sum()), 1.0, abs_tol=1e-8)
            tv.append(0.5 * float((exact - moment_one_step_law(p, beta=2.0)).abs().sum()))
        gaps.append(sum(tv) / len(tv))
    slope = (math.log(gaps[-1]) - math.log(gaps[0])) / (math.log(sizes[-1]) - math.log(sizes[0]))
    assert gaps[0] > gaps[1] > gaps[2]
    assert -1.2 < slope < -0.8, (gaps, slope)
    assert gaps[-1] < 0.002


@pytest.mark.parametrize("alpha", [1.0, 4.5])
def test_maskgit_step_follows_exact_one_step_law(alpha):
    probs = dirichlet_rows(16, 4, 0.5, torch.Generator().manual_seed(1))
    counts = one_step_counts("maskgit", probs, 200_000, seed=2, alpha=alpha)
    assert g_test_p_value(counts.reshape(-1), maskgit_one_step_law(probs, alpha).reshape(-1)) > 1e-3


def test_moment_step_follows_moment_law():
    probs = dirichlet_rows(16, 4, 0.5, torch.Generator().manual_seed(1))
    counts = one_step_counts("moment", probs, 200_000, seed=3, alpha=1.0)
    assert g_test_p_value(counts.reshape(-1), moment_one_step_law(probs, 2.0).reshape(-1)) > 1e-3


def test_maskgit_commits_tokens_at_temperature_alpha_over_one_plus_alpha_on_product_law():
    # N = 256 identical positions, V = 8: committed token law ~ p**beta / m, beta = 1 + 1/alpha
    alpha = 1.0
    p = dirichlet_rows(1, 8, 1.0, torch.Generator().manual_seed(4))[0]
    counts = one_step_counts("maskgit", p.expand(256, -1), 40_000, seed=5, batch=5_000, alpha=alpha)
    tokens = counts.sum(dim=0)
    tempered = p ** (1 + 1 / alpha) / (p ** (1 + 1 / alpha)).sum()
    assert g_test_p_value(tokens, tempered) > 1e-3
    assert g_test_p_value(tokens, p) < 1e-9, "not the untempered law"
