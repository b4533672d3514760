"""The hybrid rule: its extremes are the pure rules; counts per step are exact."""

import math

import pytest
import torch

from unmask.models.oracle import HiddenMarkov, ProductMixture
from unmask.samplers import build
from unmask.samplers.schedules import unmask_counts

ORACLE = ProductMixture.image_like(4, 4, vocab_size=8, components=3)


def run(name, seed=0, **params):
    return build(name, steps=5, **params).sample(
        ORACLE, 6, generator=torch.Generator().manual_seed(seed), trace=True
    )


def positions(out):
    return [r.positions for r in out.trace]


@pytest.mark.parametrize("exploit", ["moment", "confidence"])
def test_gamma_one_is_pure_exploitation(exploit):
    hybrid = run("hybrid", gamma=1.0, exploit=exploit, explore="random")
    pure = run(exploit)
    assert torch.equal(hybrid.tokens, pure.tokens)
    assert all(torch.equal(a, b) for a, b in zip(positions(hybrid), positions(pure), strict=True))


def test_gamma_zero_is_pure_exploration():
    hybrid = run("hybrid", gamma=0.0, exploit="confidence", explore="random")
    assert torch.equal(hybrid.tokens, run("random").tokens)
    halton = run("hybrid", gamma=0.0, explore="halton", grid=(4, 4))
    assert all(
        torch.equal(a, b)
        for a, b in zip(positions(halton), positions(run("halton", grid=(4, 4))), strict=True)
    )


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_counts_per_step_are_exact_and_split_by_gamma(gamma):
    hmm = HiddenMarkov.random(seq_len=20, vocab_size=5, states=3)
    out = build("hybrid", steps=6, gamma=gamma, explore="halton").sample(
        hmm, 4, generator=torch.Generator().manual_seed(1), trace=True
    )
    counts = unmask_counts(torch.tensor([20]), 6, "cosine")[0]
    for record, k in zip(out.trace, counts.tolist(), strict=True):
        chosen = record.positions[record.positions >= 0].view(4, -1)
        assert chosen.shape[1] == k
        assert all(len(set(row.tolist())) == k for row in chosen), "no position twice"
    assert math.ceil(0.3 * 10 - 1e-9) == 3


def test_exploit_part_comes_first_then_exploration_order():
    # gamma = 0.5, exploit = confidence (deterministic): the first ceil(k/2) are the most confident
    out = run("hybrid", gamma=0.5, exploit="confidence", explore="halton", grid=(4, 4))
    conf = run("confidence")
    first_step_k = int((out.trace[0].positions[0] >= 0).sum())
    m = math.ceil(0.5 * first_step_k - 1e-9)
    assert torch.equal(out.trace[0].positions[:, :m], conf.trace[0].positions[:, :m])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"gamma": 1.5}, "gamma=1.5"),
        ({"gamma": -0.1}, "gamma=-0.1"),
        ({"exploit": "entropy"}, "exploit='entropy'"),
        ({"explore": "zigzag"}, "explore='zigzag'"),
        ({"alpha": 0}, "alpha=0"),
        ({"grid": (3,)}, "grid="),
    ],
)
def test_bad_hybrid_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        build("hybrid", steps=4, **params)


def test_hybrid_halton_grid_must_match_length():
    with pytest.raises(ValueError, match=r"grid=\(3, 3\) has 9 cells"):
        build("hybrid", steps=4, grid=(3, 3)).sample(ORACLE, 1, generator=torch.Generator())
