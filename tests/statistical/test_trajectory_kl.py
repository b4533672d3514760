"""Path KL, exact conditional draws and total correlations on oracle laws, against laws computed
by enumeration of every completion (independently of ``unmask.metrics.trajectory``)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from unmask.metrics.exact import exact_tv_quantile, total_variation
from unmask.metrics.intervals import Estimate
from unmask.metrics.trajectory import entropies, path_kl, total_correlation_terms
from unmask.models.oracle import HiddenMarkov, ProductMixture
from unmask.samplers import build

V, L = 3, 4


def oracles():
    return {
        "hmm": HiddenMarkov.random(seq_len=L, vocab_size=V, states=2, concentration=0.7, seed=3),
        "mixture": ProductMixture.image_like(2, 2, vocab_size=V, components=3, sharpness=4.0, seed=3),
    }


def completions(oracle, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every completion of the masked positions of ``tokens`` [L] and its exact conditional law."""
    masked = (tokens == oracle.mask_id).nonzero().squeeze(1)
    rows = []
    for values in itertools.product(range(V), repeat=masked.numel()):
        row = tokens.clone()
        row[masked] = torch.tensor(values, dtype=torch.long)
        rows.append(row)
    full = torch.stack(rows)
    log_p = oracle.log_prob(full)
    return full, (log_p - torch.logsumexp(log_p, dim=0)).exp()


@pytest.mark.parametrize("name", ["hmm", "mixture"])
def test_sample_given_draws_the_exact_conditional_joint(name):
    """20000 joint draws given two observed positions: TV to the enumerated conditional law under
    the 99.9% quantile of exact sampling at that n (seed 0)."""
    oracle = oracles()[name]
    tokens = torch.tensor([[1, oracle.mask_id, 0, oracle.mask_id]])
    tokens = torch.cat([tokens, torch.tensor([[oracle.mask_id, 2, oracle.mask_id, oracle.mask_id]])])
    draws = oracle.sample_given(tokens, 20000, torch.Generator().manual_seed(0))
    assert draws.shape == (2, 20000, L)
    for b in range(2):
        observed = tokens[b] != oracle.mask_id
        assert (draws[b][:, observed] == tokens[b][observed]).all()
        full, law = completions(oracle, tokens[b])
        index = {tuple(r.tolist()): i for i, r in enumerate(full)}
        counts = torch.zeros(len(full), dtype=torch.float64)
        for row in draws[b]:
            counts[index[tuple(row.tolist())]] += 1
        tv = total_variation(counts / counts.sum(), law)
        assert tv < exact_tv_quantile(law, 20000, quantile=0.999), (name, b, tv)


@pytest.mark.parametrize("name", ["hmm", "mixture"])
def test_one_position_per_step_has_zero_path_kl(name):
    """Proposition 3 per sample: every bracket is log p_i - log p_i (float32 logits: 1e-5)."""
    oracle = oracles()[name]
    for sampler in (build("random", steps=L), build("moment", steps=L, token_temperature=1.0)):
        run = path_kl(sampler, oracle, 200, seed=1, batch_size=100)
        assert run.kl.abs().max() < 1e-5


@pytest.mark.parametrize("name", ["hmm", "mixture"])
def test_one_step_path_kl_is_the_product_to_joint_kl(name):
    """steps = 1 (all positions from their marginals at once): the mean path KL equals
    KL(prod_i p_i || p) by enumeration of all V**L sequences, within 4 standard errors
    (4000 samples, seed 2); r = L exact refreshes bring it to 0 (one position per sub-step), and
    a stale refresh keeps the one-step law."""
    oracle = oracles()[name]
    every = torch.tensor(list(itertools.product(range(V), repeat=L)))
    log_joint = oracle.log_prob(every)
    marginals = oracle.conditionals(torch.full((1, L), oracle.mask_id))[0]  # [L, V]
    log_product = marginals[torch.arange(L), every].sum(dim=1)
    exact = float((log_product.exp() * (log_product - log_joint)).sum())
    assert exact > 0.01
    for substeps, stale in ((1, False), (L, True)):
        run = path_kl(
            build("random", steps=1, substeps=substeps), oracle, 4000, seed=2, batch_size=1000, stale=stale
        )
        estimate = Estimate.of(run.kl)
        assert abs(estimate.mean - exact) < 4 * estimate.stderr, (substeps, stale, estimate, exact)
    run = path_kl(build("random", steps=1, substeps=L), oracle, 500, seed=3, batch_size=500)
    assert run.kl.abs().max() < 1e-5 and run.cost < L  # refreshes cost less than L full passes


@pytest.mark.parametrize("name", ["hmm", "mixture"])
def test_total_correlation_terms_estimate_the_enumerated_tc(name):
    """TC(X_S | x_obs) = sum_i H(X_i | x_obs) - H(X_S | x_obs) by enumeration, against the mean
    of the terms over 20000 exact draws, within 4 standard errors (seed 4); S = B gives 0 when
    B is one position."""
    oracle = oracles()[name]
    tokens = torch.tensor([[oracle.mask_id, 1, oracle.mask_id, oracle.mask_id]])
    subset = torch.tensor([[True, False, True, True]])
    _, law = completions(oracle, tokens[0])
    log_probs = oracle.conditionals(tokens)
    joint_entropy = float(-(law * law.log()).sum())
    exact = float(entropies(log_probs)[0][subset[0]].sum()) - joint_entropy
    draws = oracle.sample_given(tokens, 20000, torch.Generator().manual_seed(4))
    terms = total_correlation_terms(oracle, tokens, subset, draws, log_probs)[0]
    estimate = Estimate.of(terms)
    assert exact > 1e-3 and abs(estimate.mean - exact) < 4 * estimate.stderr, (estimate, exact)
    single = torch.tensor([[False, False, True, False]])
    assert total_correlation_terms(oracle, tokens, single, draws[:, :50], log_probs).abs().max() < 1e-9
    assert math.isfinite(exact)
