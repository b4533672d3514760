"""The exact-law helpers the figures use: the moment sampler's one-by-one law by enumeration
matches the sampler, and the implied temperature inverts the tempered mean log-probability."""

import math

import torch

from unmask.metrics.exact import chi2_sf, compare_to_joint, empirical_law
from unmask.metrics.laws import implied_temperature, moment_one_by_one_law, tempered_mean_log_prob
from unmask.models.oracle import TabularJoint
from unmask.samplers import build


def test_moment_sampler_one_by_one_follows_its_enumerated_law():
    # G-test, p > 1e-3 counts as consistent (seeds fixed); 40k samples on a 3^4 joint
    joint = TabularJoint.random(vocab_size=3, seq_len=4, seed=7)
    law = moment_one_by_one_law(joint, alpha=1.0)
    sampler = build("moment", steps=4, alpha=1.0, anneal=False)
    tokens = sampler.sample(joint, 40_000, generator=torch.Generator().manual_seed(3)).tokens
    counts = empirical_law(joint, tokens)
    q = counts / counts.sum()
    support = q > 0
    g = 2 * float(counts.sum()) * float((q[support] * (q[support] / law[support]).log()).sum())
    assert chi2_sf(g, int((law > 0).sum()) - 1) > 1e-3
    assert compare_to_joint(joint, tokens).p_value < 1e-9, "and it is not the joint"


def test_untempered_moment_one_by_one_law_is_the_joint():
    joint = TabularJoint.random(vocab_size=3, seq_len=3, seed=1)
    assert torch.allclose(
        moment_one_by_one_law(joint, alpha=0.7, token_temperature=1.0), joint.probs, atol=1e-12
    )


def test_implied_temperature_recovers_the_temperature_of_tempered_draws():
    log_p = torch.log_softmax(torch.randn(5, 12, generator=torch.Generator().manual_seed(0)) * 2, dim=-1)
    for tau in (0.3, 0.8, 1.0, 1.7):
        target = float(tempered_mean_log_prob(log_p, tau).mean())
        assert math.isclose(implied_temperature(log_p, target), tau, rel_tol=1e-6)
