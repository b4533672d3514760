"""Partial caching: chunking, exact NFE and cost accounting, fallback for plain denoisers."""

import pytest
import torch

from conftest import RandomNetDenoiser
from unmask.models.oracle import ProductMixture
from unmask.models.transformer import MaskedTransformer
from unmask.samplers import build
from unmask.samplers.caching import chunk_bounds
from unmask.samplers.schedules import unmask_counts

CTS = ["moment", "confidence", "margin", "entropy", "random", "halton", "hybrid"]


class CountingPartial:
    """Wraps a ``MaskedTransformer`` and records every encode and refresh."""

    def __init__(self, model):
        self.model, self.vocab_size, self.seq_len = model, model.vocab_size, model.seq_len
        self.encodes, self.refresh_rows = 0, []

    def __call__(self, tokens, cond=None):
        raise AssertionError("partial caching must call encode, not __call__")

    def encode(self, tokens, cond=None):
        self.encodes += 1
        with torch.no_grad():
            return self.model.encode(tokens, cond)

    def refresh(self, tokens, rows, cache, cond=None):
        self.refresh_rows.append(rows.shape[1])
        with torch.no_grad():
            return self.model.refresh(tokens, rows, cache, cond)


def test_chunk_bounds_split_counts_near_equally_larger_first():
    bounds = chunk_bounds(torch.tensor([7, 2, 0]), 3)
    assert bounds.tolist() == [[0, 3, 5, 7], [0, 1, 2, 2], [0, 0, 0, 0]]


@pytest.mark.parametrize("name", CTS)
@pytest.mark.parametrize("substeps", [2, 4, 100])
def test_nfe_and_cost_are_exact(name, substeps):
    torch.manual_seed(0)
    model = CountingPartial(MaskedTransformer(9, 16, width=32, depth=2, heads=2).eval())
    params = {"grid": (4, 4)} if name in ("halton", "hybrid") else {}
    out = build(name, steps=4, substeps=substeps, **params).sample(
        model, 3, generator=torch.Generator().manual_seed(0), trace=True
    )
    counts = unmask_counts(torch.tensor([16]), 4, "cosine")[0]
    assert out.nfe == model.encodes == 4
    # per step: chunks r = min(substeps, k); refresh j needs k - (start of chunk j) rows
    expected_rows = []
    for k in counts.tolist():
        r = min(substeps, k)
        bounds = chunk_bounds(torch.tensor([k]), r)[0].tolist()
        expected_rows += [k - bounds[j] for j in range(r - 1)]
    assert model.refresh_rows == expected_rows
    assert out.cost == pytest.approx(4 + sum(expected_rows) / 16, abs=1e-12)
    assert sorted(r.substep for r in out.trace if r.step == 0) == list(range(min(substeps, int(counts[0]))))
    assert ((out.tokens >= 0) & (out.tokens < 9)).all()


def test_plain_denoiser_falls_back_to_counted_full_calls():
    denoiser = RandomNetDenoiser(6, 12)
    out = build("confidence", steps=3, substeps=2).sample(
        denoiser, 2, generator=torch.Generator().manual_seed(0)
    )
    assert out.nfe == denoiser.calls == 6  # one full call per step + one per refresh
    assert out.cost == 6


def test_substeps_one_is_the_plain_sampler_bit_for_bit():
    oracle = ProductMixture.image_like(4, 4, vocab_size=8, components=3)
    a = build("moment", steps=5).sample(oracle, 8, generator=torch.Generator().manual_seed(3))
    b = build("moment", steps=5, substeps=1).sample(oracle, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.tokens, b.tokens) and a.cost == b.cost == 5


def test_partial_caching_keeps_given_tokens_and_is_deterministic():
    oracle = ProductMixture.image_like(4, 4, vocab_size=8, components=3)
    init = torch.full((3, 16), 8)
    init[:, :5] = torch.tensor([1, 2, 3, 4, 5])
    init[1, 5:9] = 0  # rows with different numbers of masked positions
    sampler = build("entropy", steps=3, substeps=3)
    a = sampler.sample(oracle, 3, generator=torch.Generator().manual_seed(4), init=init)
    b = sampler.sample(oracle, 3, generator=torch.Generator().manual_seed(4), init=init)
    assert torch.equal(a.tokens, b.tokens)
    assert torch.equal(a.tokens[init != 8], init[init != 8])
    assert (a.tokens < 8).all()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_substeps_is_named(bad):
    with pytest.raises(ValueError, match="substeps="):
        build("moment", steps=4, substeps=bad)


def test_issue_examples_run_on_the_transformer_and_on_the_oracles():
    from unmask.models.oracle import HiddenMarkov, TabularJoint

    torch.manual_seed(0)
    transformer = MaskedTransformer(16, 64, width=32, depth=2, heads=2).eval()
    denoisers = [
        transformer,
        ProductMixture.image_like(8, 8, vocab_size=16, components=3),
        HiddenMarkov.random(seq_len=64, vocab_size=16, states=4),
    ]
    samplers = [
        build("moment", steps=8, substeps=4),
        build("hybrid", steps=8, gamma=0.5, explore="halton", grid=(8, 8)),
    ]
    for denoiser in denoisers:
        for sampler in samplers:
            with torch.no_grad():
                out = sampler.sample(denoiser, 2, generator=torch.Generator().manual_seed(0))
            assert out.tokens.shape == (2, 64) and (out.tokens < 16).all()
    tiny = TabularJoint.random(3, 4, torch.Generator().manual_seed(0))
    out = build("hybrid", steps=2, gamma=0.5, explore="halton", grid=(2, 2), substeps=2).sample(
        tiny, 5, generator=torch.Generator().manual_seed(0)
    )
    assert (out.tokens < 3).all()


def alpha_jax(alpha: float, s: int, total: int) -> float:
    """google-research/maskgit's annealed choice temperature at step s of total, written out."""
    return alpha * (1 - (s + 1) / total)


@pytest.mark.parametrize("name", ["moment", "hybrid"])
def test_substeps_follow_the_temperatures_of_plain_t_times_r(name):
    T, r, alpha = 4, 3, 4.5
    cached = build(name, steps=T, substeps=r, alpha=alpha, substep_anneal="substep")
    for t in range(T):
        for j in range(r):
            a = alpha_jax(alpha, t * r + j, T * r)
            expected = 0.0 if a == 0 else 1 / (1 + 1 / a)  # 1 / beta, beta = 1 + 1 / alpha
            assert cached.substep_token_temperature(t, j) == pytest.approx(expected, abs=1e-15)
    old = build(name, steps=T, substeps=r, alpha=alpha, substep_anneal="step")
    assert {old.substep_token_temperature(T - 1, j) for j in range(r)} == {0.0}  # the first release's rule


def test_only_the_last_substep_of_the_last_step_is_argmax(monkeypatch):
    from unmask.samplers import caching

    seen = []
    real = caching.draw_rows
    monkeypatch.setattr(caching, "draw_rows", lambda *a, **k: seen.append(k["temperature"]) or real(*a, **k))
    oracle = ProductMixture.image_like(4, 4, vocab_size=8, components=3)
    build("moment", steps=4, substeps=4, schedule="linear", substep_anneal="substep").sample(
        oracle, 2, generator=torch.Generator().manual_seed(0)
    )
    assert len(seen) == 16 and seen[-1] == 0.0 and min(seen[:-1]) > 0  # 4 steps x 4 sub-steps of 1 token
    seen.clear()
    build("moment", steps=4, substeps=4, schedule="linear", substep_anneal="step").sample(
        oracle, 2, generator=torch.Generator().manual_seed(0)
    )
    assert seen[-4:] == [0.0] * 4  # the old rule: the whole last step by argmax


def test_a_bad_substep_anneal_is_named():
    with pytest.raises(ValueError, match="substep_anneal='sub' must be one of substep, step"):
        build("moment", steps=4, substeps=2, substep_anneal="sub")
