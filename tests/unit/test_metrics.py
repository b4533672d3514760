"""Metric functions against closed forms."""

import math

import pytest
import torch

from unmask.metrics.fid import feature_statistics, frechet_distance
from unmask.metrics.text import distinct_n, text_statistics, unigram_entropy_bits


def test_frechet_distance_of_gaussians_matches_closed_form():
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]).double(), torch.tensor([1.0, 1.0, 0.0]).double()
    a, b = torch.tensor([1.0, 4.0, 9.0]).double(), torch.tensor([4.0, 4.0, 1.0]).double()
    expected = float((mu1 - mu2).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum())
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_is_zero_for_identical_statistics_and_symmetric():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g) @ torch.randn(6, 6, generator=g)
    y = torch.randn(500, 6, generator=g)
    sx, sy = feature_statistics(x), feature_statistics(y)
    assert frechet_distance(*sx, *sx) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(*sx, *sy) == pytest.approx(frechet_distance(*sy, *sx), rel=1e-8)


def test_text_statistics():
    tokens = torch.tensor([[0, 1, 0, 1], [2, 3, 2, 3]])
    assert unigram_entropy_bits(tokens, 4) == pytest.approx(2.0)
    assert distinct_n(tokens, 1) == pytest.approx(4 / 8)
    assert distinct_n(tokens, 2) == pytest.approx(4 / 6)  # (0,1),(1,0),(2,3),(3,2)
    constant = torch.zeros(3, 5, dtype=torch.long)
    stats = text_statistics(constant, 10)
    assert stats["unigram_entropy_bits"] == 0 and stats["distinct_4"] == pytest.approx(1 / 6)
    assert math.isfinite(stats["distinct_2"])
