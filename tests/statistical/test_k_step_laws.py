"""The inclusion laws of one step with budget k > 1 (``maskgit_k_step_inclusion``,
``moment_k_step_inclusion``, quadrature) against brute force: every proposal vector and every
ordered Plackett-Luce draw of the k kept positions enumerated, with exact probabilities.
Tolerance: 1e-7 absolute per entry (the largest error measured on these cases is 3e-14). And the
samplers' own step with k = 3 against its law (G-test)."""

import itertools
import math

import pytest
import torch

from unmask.metrics.exact import g_test
from unmask.metrics.laws import (
    dirichlet_rows,
    maskgit_k_step_inclusion,
    maskgit_one_step_law,
    moment_k_step_inclusion,
    moment_one_step_law,
)
from unmask.samplers import build

TOL = 1e-7


def g_test_p_value(counts: torch.Tensor, law: torch.Tensor) -> float:
    return g_test(counts, law)[1]


def plackett_luce_inclusion(weights: list[float], k: int) -> list[float]:
    """``P(i among the first k)`` of a Plackett-Luce draw without replacement, by enumerating
    every ordered k-tuple: ``prod_l w_{s_l} / (W - w_{s_1} - ... - w_{s_{l-1}})``."""
    total = sum(weights)
    included = [0.0] * len(weights)
    for order in itertools.permutations(range(len(weights)), k):
        prob, left = 1.0, total
        for j in order:
            prob *= weights[j] / left
            left -= weights[j]
        for j in order:
            included[j] += prob
    return included


def brute_maskgit(p: torch.Tensor, alpha: float, k: int) -> torch.Tensor:
    n, vocab = p.shape
    law = torch.zeros(n, vocab, dtype=torch.float64)
    for proposal in itertools.product(range(vocab), repeat=n):
        prob = math.prod(float(p[j, v]) for j, v in enumerate(proposal))
        if prob == 0:
            continue
        weights = [float(p[j, v]) ** (1 / alpha) for j, v in enumerate(proposal)]
        for j, inc in enumerate(plackett_luce_inclusion(weights, k)):
            law[j, proposal[j]] += prob * inc
    return law


def brute_moment(p: torch.Tensor, beta: float, k: int) -> torch.Tensor:
    powered = p.double() ** beta
    moments = powered.sum(dim=1)
    included = torch.tensor(plackett_luce_inclusion(moments.tolist(), k), dtype=torch.float64)
    return included[:, None] * powered / moments[:, None]


def rows(vocab: int, seed: int) -> torch.Tensor:
    """Four rows: three Dirichlet(0.5) and one with an exact zero."""
    p = dirichlet_rows(4, vocab, 0.5, torch.Generator().manual_seed(seed))
    p[3] = torch.tensor([0.0, 0.8, 0.2][:vocab] if vocab == 3 else [0.0, 1.0], dtype=torch.float64)
    return p


@pytest.mark.parametrize("vocab", [2, 3])
@pytest.mark.parametrize("alpha", [0.7, 2.0])
def test_k_step_inclusion_laws_match_enumeration(alpha, vocab):
    p = rows(vocab, seed=vocab)
    maskgit = maskgit_k_step_inclusion(p, alpha, [1, 2, 3])
    moment = moment_k_step_inclusion(p, 1 + 1 / alpha, [1, 2, 3])
    for slot, k in enumerate([1, 2, 3]):
        assert (maskgit[slot] - brute_maskgit(p, alpha, k)).abs().max() < TOL, k
        assert (moment[slot] - brute_moment(p, 1 + 1 / alpha, k)).abs().max() < TOL, k
    assert torch.equal(maskgit[1], maskgit_k_step_inclusion(p, alpha, 2)), "one k or several: same law"


def test_inclusion_laws_sum_to_k_and_rows_to_at_most_one():
    p = dirichlet_rows(24, 8, 0.3, torch.Generator().manual_seed(5))
    ks = [1, 5, 12, 23]
    for law in (maskgit_k_step_inclusion(p, 1.0, ks), moment_k_step_inclusion(p, 2.0, ks)):
        assert (law >= 0).all()
        for slot, k in enumerate(ks):
            assert math.isclose(float(law[slot].sum()), k, abs_tol=TOL)
            assert float(law[slot].sum(dim=1).max()) <= 1 + TOL


def test_revealing_every_position_keeps_every_token_law():
    p = dirichlet_rows(6, 5, 0.4, torch.Generator().manual_seed(6))
    alpha = 1.5
    beta = 1 + 1 / alpha
    assert (maskgit_k_step_inclusion(p, alpha, 6) - p).abs().max() < TOL
    tempered = p**beta / (p**beta).sum(dim=1, keepdim=True)
    assert (moment_k_step_inclusion(p, beta, 6) - tempered).abs().max() < TOL


def test_k_equal_one_is_the_one_step_law():
    p = dirichlet_rows(32, 16, 0.3, torch.Generator().manual_seed(7))
    for alpha in (0.7, 4.5):
        exact = maskgit_one_step_law(p, alpha, grid_points=12000)
        assert (maskgit_k_step_inclusion(p, alpha, 1) - exact).abs().max() < 1e-9
        moment = moment_one_step_law(p, 1 + 1 / alpha)
        assert (moment_k_step_inclusion(p, 1 + 1 / alpha, 1) - moment).abs().max() < 1e-12


def test_k_outside_one_to_n_is_refused():
    p = dirichlet_rows(4, 3, 0.5, torch.Generator().manual_seed(8))
    for k in (0, 5):
        with pytest.raises(ValueError, match="every k"):
            maskgit_k_step_inclusion(p, 1.0, k)


def inclusion_counts(name: str, probs: torch.Tensor, n: int, k: int, seed: int, **params) -> torch.Tensor:
    """Counts ``[N, V]`` of (position, token) revealed by the first step of ``n`` runs with budget k."""
    sampler = build(name, steps=probs.shape[0], anneal=False, **params)
    generator = torch.Generator().manual_seed(seed)
    masked = torch.ones(n, probs.shape[0], dtype=torch.bool)
    logits = probs.log().float().expand(n, -1, -1)
    positions, valid, tokens = sampler.step(logits, masked, torch.full((n,), k), 0, generator)
    counts = torch.zeros(probs.shape, dtype=torch.float64)
    counts.index_put_(
        (positions[valid], tokens), torch.ones(int(valid.sum()), dtype=torch.float64), accumulate=True
    )
    return counts


@pytest.mark.parametrize("name", ["maskgit", "moment"])
def test_samplers_step_follows_its_k_step_inclusion_law(name):
    # G-test on the k n inclusions as if multinomial (conservative: a run never repeats a
    # position), p > 1e-3 counts as consistent; N = 8, V = 4, k = 3, alpha = 1, 60k runs
    probs = dirichlet_rows(8, 4, 0.5, torch.Generator().manual_seed(1))
    counts = inclusion_counts(name, probs, 60_000, 3, seed=2, alpha=1.0)
    laws = {
        "maskgit": maskgit_k_step_inclusion(probs, 1.0, 3),
        "moment": moment_k_step_inclusion(probs, 2.0, 3),
    }
    own, twin = laws[name], laws["moment" if name == "maskgit" else "maskgit"]
    assert g_test_p_value(counts.reshape(-1), own.reshape(-1) / 3) > 1e-3
    assert g_test_p_value(counts.reshape(-1), twin.reshape(-1) / 3) < 1e-9, (
        "and N = 8 is too few for the twin"
    )
