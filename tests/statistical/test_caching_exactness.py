"""Partial caching and the hybrid rule on an exact tabular joint (G-test p > 1e-3 = exact;
40k samples; seeds fixed)."""

import pytest
import torch

from unmask.metrics.exact import compare_to_joint
from unmask.models.oracle import TabularJoint
from unmask.samplers import build

N = 40_000


@pytest.fixture(scope="module")
def joint():
    return TabularJoint.random(vocab_size=3, seq_len=4, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("confidence", {}),
        ("random", {}),
        ("moment", {"token_temperature": 1.0}),
        ("hybrid", {"gamma": 0.5, "exploit": "confidence", "explore": "random"}),
    ],
)
def test_partial_caching_one_token_per_substep_is_exact_at_one_full_call(joint, name, params):
    # steps = 1, substeps = L: all positions chosen from one full call, revealed one by one, each
    # from the oracle's exact refresh; cost = 1 + (4 + 3 + 2) / 4
    out = build(name, steps=1, substeps=4, **params).sample(
        joint, N, generator=torch.Generator().manual_seed(21)
    )
    assert out.nfe == 1 and out.cost == pytest.approx(3.25)
    result = compare_to_joint(joint, out.tokens)
    assert result.p_value > 1e-3, result


def test_one_by_one_hybrid_with_confidence_is_exact(joint):
    out = build("hybrid", steps=4, gamma=0.5, exploit="confidence", explore="halton").sample(
        joint, N, generator=torch.Generator().manual_seed(22)
    )
    result = compare_to_joint(joint, out.tokens)
    assert result.p_value > 1e-3, result
