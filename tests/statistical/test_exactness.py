"""The paper's claims, checked exactly on oracle laws.

Tolerances: G-tests compare an empirical law of n samples with an exact law; under exact
sampling the p-value is uniform, so "consistent" means p > 1e-3 and "biased" means p < 1e-9 and
TV above three times the 99% quantile of the TV an exact sampler would show. All seeds fixed.
"""

import math

import pytest
import torch

from unmask.metrics.exact import chi2_sf, compare_to_joint, empirical_law, kl_divergence, nll
from unmask.metrics.laws import maskgit_one_by_one_law
from unmask.models.oracle import HiddenMarkov, TabularJoint
from unmask.samplers import build


@pytest.fixture(scope="module")
def joint():
    return TabularJoint.random(vocab_size=3, seq_len=4, generator=torch.Generator().manual_seed(7))


N_SAMPLES = 40_000


def sample_one_by_one(joint, name, seed, **params):
    sampler = build(name, steps=joint.seq_len, **params)
    return sampler.sample(joint, N_SAMPLES, generator=torch.Generator().manual_seed(seed)).tokens


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("random", {}),
        ("confidence", {}),
        ("margin", {}),
        ("entropy", {}),
        ("halton", {}),
        ("moment", {"token_temperature": 1.0}),
        ("moment", {"token_temperature": 1.0, "anneal": False, "alpha": 0.5}),
        ("maskgit", {"alpha": math.inf}),
    ],
)
def test_cts_one_by_one_is_exact_on_tabular_joint(joint, name, params):
    result = compare_to_joint(joint, sample_one_by_one(joint, name, seed=11, **params))
    assert result.p_value > 1e-3, result
    assert result.tv < result.exact_tv_q99 * 1.25, result


def test_maskgit_one_by_one_is_biased_and_sharper(joint):
    samples = sample_one_by_one(joint, "maskgit", seed=12, alpha=1.0, anneal=False)
    result = compare_to_joint(joint, samples)
    assert result.p_value < 1e-9, result
    assert result.tv > 3 * result.exact_tv_q99, result
    cross_entropy = nll(joint, samples)
    assert cross_entropy.mean < joint.entropy() - 5 * cross_entropy.stderr, "sharper than the data law"
    assert result.empirical_entropy < result.true_entropy


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_maskgit_one_by_one_follows_its_exact_law(alpha):
    small = TabularJoint.random(vocab_size=3, seq_len=3, generator=torch.Generator().manual_seed(3))
    law = maskgit_one_by_one_law(small, alpha)
    assert math.isclose(float(law.sum()), 1.0, rel_tol=1e-9)
    samples = build("maskgit", steps=3, alpha=alpha, anneal=False).sample(
        small, N_SAMPLES, generator=torch.Generator().manual_seed(13)
    )
    counts = empirical_law(small, samples.tokens)
    g = 2 * N_SAMPLES * kl_divergence(counts / N_SAMPLES, law)
    assert chi2_sf(g, int((law > 0).sum()) - 1) > 1e-3
    # and it is not the data law
    assert 0.5 * float((law - small.probs).abs().sum()) > 0.02


def test_moment_with_huge_alpha_behaves_like_random(joint):
    # beta = 1 + 1e-6: positions uniformly random, tokens at temperature ~1 -> exact one by one
    samples = sample_one_by_one(joint, "moment", seed=14, alpha=1e6, anneal=False)
    result = compare_to_joint(joint, samples)
    assert result.p_value > 1e-3, result
    # the first revealed position is uniform (chi-square, 3 dof, p > 1e-3)
    out = build("moment", steps=4, alpha=1e6, anneal=False).sample(
        joint, N_SAMPLES, generator=torch.Generator().manual_seed(15), trace=True
    )
    first = torch.bincount(out.trace[0].positions[:, 0], minlength=4).double()
    expected = N_SAMPLES / 4
    assert chi2_sf(float(((first - expected) ** 2 / expected).sum()), 3) > 1e-3


def greedy_confidence_argmax(oracle, steps_per_position: int = 1) -> torch.Tensor:
    """Reference: reveal the position with the largest max-probability, with its argmax token."""
    tokens = torch.full((1, oracle.seq_len), oracle.vocab_size)
    for _ in range(oracle.seq_len):
        p = oracle(tokens)[0].double().softmax(dim=1)
        top, arg = p.max(dim=1)
        top[tokens[0] != oracle.vocab_size] = -1
        i = int(top.argmax())
        tokens[0, i] = arg[i]
    return tokens[0]


def test_moment_with_tiny_alpha_is_greedy_confidence_with_argmax_tokens():
    hmm = HiddenMarkov.random(seq_len=12, vocab_size=6, states=4, generator=torch.Generator().manual_seed(5))
    reference = greedy_confidence_argmax(hmm)
    out = build("moment", steps=12, alpha=1e-4, anneal=False).sample(
        hmm, 64, generator=torch.Generator().manual_seed(16)
    )
    # beta = 10001: Gumbel noise of scale 1 against gaps of beta * log-prob differences;
    # tolerance: at least 95% of 64 rows equal the greedy reference (all do with this seed)
    agree = (out.tokens == reference).all(dim=1).double().mean()
    assert agree >= 0.95
