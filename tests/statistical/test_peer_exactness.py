"""The peers' samplers and the guidance option on exact oracle laws.

Tolerances (as in test_exactness.py): a G-test of n samples against an exact law has a uniform
p-value under exact sampling, so "consistent" means p > 1e-3 (and, against a tabular joint, TV
below 1.25 times the 99% quantile of the TV of exact sampling); "different" means p < 1e-9.
Two-sample comparisons use the G-test of homogeneity (chi-square with K - 1 degrees of freedom
over the K sequences seen). All seeds fixed.
"""

import math

import pytest
import torch

from unmask.metrics.exact import chi2_sf, compare_to_joint, empirical_law
from unmask.models.oracle import ClassConditionalJoint, TabularJoint
from unmask.samplers import build

N = 40_000


@pytest.fixture(scope="module")
def joint():
    return TabularJoint.random(vocab_size=3, seq_len=4, generator=torch.Generator().manual_seed(7))


def two_sample_p_value(a: torch.Tensor, b: torch.Tensor) -> float:
    """G-test that two count vectors come from the same law."""
    seen = (a + b) > 0
    a, b = a[seen], b[seen]
    pooled = (a + b) / (a.sum() + b.sum())
    g = 0.0
    for counts in (a, b):
        expected = pooled * counts.sum()
        nonzero = counts > 0
        g += 2 * float((counts[nonzero] * (counts[nonzero] / expected[nonzero]).log()).sum())
    return chi2_sf(g, int(seen.sum()) - 1)


def g_test_p_value(counts: torch.Tensor, law: torch.Tensor) -> float:
    n = float(counts.sum())
    seen = counts > 0
    g = 2 * float((counts[seen] * (counts[seen] / (n * law[seen])).log()).sum())
    return chi2_sf(g, int((law > 0).sum()) - 1)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("eb", {"gamma": 0.0, "proxy": "entropy"}),
        ("eb", {"gamma": 0.0, "proxy": "confidence"}),
        ("eb", {"gamma": 0.0, "proxy": "margin"}),
        ("first_hitting", {}),
        ("semi_ar", {"block_length": 2, "base": "confidence", "base_params": {"steps": 2}}),
    ],
)
def test_one_position_per_step_peers_are_exact_on_tabular_joint(joint, name, params):
    out = build(name, **params).sample(joint, N, generator=torch.Generator().manual_seed(31), trace=True)
    assert all(((r.positions >= 0).sum(dim=1) == 1).all() for r in out.trace), "one position per step"
    result = compare_to_joint(joint, out.tokens)
    assert result.p_value > 1e-3, result
    assert result.tv < result.exact_tv_q99 * 1.25, result


def test_first_hitting_on_a_grid_has_the_law_of_ancestral(joint):
    # 2 grid steps: both reveal about two positions per call, visibly biased, and equally so
    grid = build("first_hitting", max_steps=2).sample(joint, N, generator=torch.Generator().manual_seed(32))
    ancestral = build("ancestral", steps=2).sample(joint, N, generator=torch.Generator().manual_seed(33))
    assert grid.nfe <= 2
    a, b = empirical_law(joint, grid.tokens), empirical_law(joint, ancestral.tokens)
    assert two_sample_p_value(a, b) > 1e-3
    assert compare_to_joint(joint, grid.tokens).p_value < 1e-9, "the test has power: the law is not exact"


def test_remdm_without_remasking_has_the_law_of_ancestral(joint):
    remdm = build("remdm", steps=6, eta=0.0).sample(joint, N, generator=torch.Generator().manual_seed(36))
    ancestral = build("ancestral", steps=6).sample(joint, N, generator=torch.Generator().manual_seed(37))
    a, b = empirical_law(joint, remdm.tokens), empirical_law(joint, ancestral.tokens)
    assert two_sample_p_value(a, b) > 1e-3


def all_at_once_law(joint: TabularJoint) -> torch.Tensor:
    """The law of revealing every position in one step: the product of the marginals."""
    marginals = joint.conditionals(torch.full((1, joint.seq_len), joint.vocab_size))[0].exp()
    law = torch.ones_like(joint.probs)
    for j in range(joint.seq_len):
        law *= marginals[j][joint.sequences[:, j]]
    return law


@pytest.mark.parametrize("remask", ["cap", "rescale", "conf"])
def test_remdm_remasks_and_stays_close_to_the_data_law(joint, remask):
    # sane, not exact: remasking with parallel reveals is biased, but its TV is under a quarter of
    # that of revealing everything at once (0.43 here), and its entropy stays closer to the data
    # entropy than to that of the all-at-once law (measured: TV 0.04 to 0.09)
    n = 20_000
    out = build("remdm", steps=32, remask=remask, eta=0.1).sample(
        joint, n, generator=torch.Generator().manual_seed(38), trace=True
    )
    remasks = sum(int((r.positions >= 0).sum()) for r in out.trace if r.kind == "remask")
    assert remasks > n, "tokens are remasked (more than once per sample on average)"
    result = compare_to_joint(joint, out.tokens)
    product = all_at_once_law(joint)
    assert result.tv < 0.25 * 0.5 * float((product - joint.probs).abs().sum()), result
    product_entropy = float(-(product * product.log()).sum())
    assert result.empirical_entropy - result.true_entropy < 0.5 * (product_entropy - result.true_entropy)


@pytest.fixture(scope="module")
def classes():
    return ClassConditionalJoint.random(num_classes=3, vocab_size=3, seq_len=3, seed=5)


def test_zero_guidance_samples_the_class_conditional_law_exactly(classes):
    label = 1
    out = build("random", steps=3).sample(
        classes, N, generator=torch.Generator().manual_seed(41), cond=torch.full((N,), label)
    )
    counts = empirical_law(classes.classes[label], out.tokens)
    assert g_test_p_value(counts, classes.classes[label].probs) > 1e-3
    assert g_test_p_value(counts, classes.marginal.probs) < 1e-9, "and not the marginal law"


def test_guided_first_reveal_follows_the_guided_categorical(classes):
    # random order, one position per step: P(i, v) = (1 / L) q_i(v) with
    # q_i(v) proportional to p(x_i = v | c)**(1 + s) / p(x_i = v)**s
    label, scale = 2, 1.5
    out = build("random", steps=3, cfg_scale=scale).sample(
        classes, N, generator=torch.Generator().manual_seed(42), cond=torch.full((N,), label), trace=True
    )
    first = out.trace[0]
    cells = first.positions[:, 0] * 3 + first.tokens[:, 0]
    counts = torch.bincount(cells, minlength=9).double()
    masked = torch.full((1, 3), 3)
    cond = classes.conditionals(masked, torch.tensor([label]))[0].exp()
    uncond = classes.conditionals(masked, None)[0].exp()
    guided = cond ** (1 + scale) / uncond**scale
    law = (guided / guided.sum(dim=1, keepdim=True) / 3).reshape(-1)
    assert g_test_p_value(counts, law) > 1e-3
    assert g_test_p_value(counts, (cond / 3).reshape(-1)) < 1e-9, "guidance changes the law"


def test_guidance_sharpens_towards_the_class(classes):
    # mean log p(c | x) of the samples grows with the scale (by more than 5 standard errors)
    n, label = 20_000, 0
    means, errors = [], []
    for scale, ramp in ((0.0, "constant"), (1.0, "linear"), (1.0, "constant"), (3.0, "constant")):
        out = build("random", steps=3, cfg_scale=scale, cfg_ramp=ramp).sample(
            classes, n, generator=torch.Generator().manual_seed(43), cond=torch.full((n,), label)
        )
        values = classes.class_log_posterior(out.tokens)[:, label]
        means.append(float(values.mean()))
        errors.append(float(values.std()) / math.sqrt(n))
    for i in range(3):
        assert means[i + 1] - means[i] > 5 * math.hypot(errors[i], errors[i + 1]), (means, errors)
