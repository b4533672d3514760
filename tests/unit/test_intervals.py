"""Intervals on the metrics (``unmask.metrics.intervals``): each standard error against a formula
written here with numpy, each bootstrap against the statistic recomputed on the materialised
resamples (``np.repeat`` of the samples by their draw counts), determinism under a fixed seed, and
the point estimates unchanged. All seeds are fixed; the tolerances are float64 round-off
(``rel=1e-9``; ``1e-6`` where the point FID takes the square root of a rank-deficient matrix)."""

import math

import numpy as np
import pytest
import torch

from unmask.metrics.exact import compare_to_joint
from unmask.metrics.fid import bootstrap_frechet, feature_statistics, frechet_distance
from unmask.metrics.intervals import (
    Bootstrap,
    bootstrap_counts,
    entropy_bits,
    mean_stderr,
    ratio_stderr,
    spread,
    weighted_histograms,
)
from unmask.metrics.suite import MetricSuite, check_options, perplexity_metrics
from unmask.metrics.text import distinct_n, mean_sample_entropy_bits, text_statistics, unigram_entropy_bits
from unmask.models.oracle import TabularJoint


def resampled(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    return x[torch.from_numpy(np.repeat(np.arange(x.shape[0]), counts.numpy()))]


def test_mean_stderr_is_the_sample_std_over_root_n():
    x = np.random.default_rng(1).normal(size=37)
    assert mean_stderr(torch.tensor(x)) == pytest.approx(np.std(x, ddof=1) / np.sqrt(37), rel=1e-12)
    assert math.isnan(mean_stderr(torch.tensor([1.0])))


def test_ratio_stderr_is_the_delta_method_of_the_means():
    rng = np.random.default_rng(2)
    b = rng.integers(5, 50, size=80).astype(float)
    a = b * rng.gamma(4.0, 0.5, size=80)
    # Var(mean a / mean b) ~ (Var a - 2 r Cov(a, b) + r^2 Var b) / (n mean(b)^2)
    r = a.mean() / b.mean()
    cov = np.cov(a, b, ddof=1)
    expected = np.sqrt((cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (80 * b.mean() ** 2))
    assert ratio_stderr(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, rel=1e-10)


def test_perplexity_metrics_keep_the_pooled_value_and_scale_the_stderr_by_it():
    judged = torch.tensor([[10.0, 4.0, 15.0], [30.0, 10.0, 41.0], [12.0, 6.0, 20.0]], dtype=torch.float64)
    out = perplexity_metrics(judged)
    assert out["gen_ppl"] == pytest.approx(math.exp(52 / 20), rel=1e-12)
    assert out["gen_ppl_judge_tokens"] == 20.0
    se = ratio_stderr(judged[:, 0], judged[:, 1])
    assert out["gen_ppl_stderr"] == pytest.approx(out["gen_ppl"] * se, rel=1e-12)
    assert out["gen_bits_per_token"] == pytest.approx(52 / 20 / math.log(2), rel=1e-12)
    assert out["gen_bits_per_token_stderr"] == pytest.approx(se / math.log(2), rel=1e-12)
    assert out["gen_bits_per_char"] == pytest.approx(52 / 76 / math.log(2), rel=1e-12)
    per_char = ratio_stderr(judged[:, 0], judged[:, 2])
    assert out["gen_bits_per_char_stderr"] == pytest.approx(per_char / math.log(2), rel=1e-12)


def test_bootstrap_counts_are_n_draws_per_replicate_and_fixed_by_the_seed():
    counts = bootstrap_counts(50, 20, 7)
    assert counts.shape == (20, 50) and (counts.sum(dim=1) == 50).all() and (counts >= 0).all()
    assert torch.equal(counts, bootstrap_counts.__wrapped__(50, 20, 7))  # not only the cache
    assert not torch.equal(counts, bootstrap_counts(50, 20, 8))
    # about 1 - 1/e of the samples appear in a replicate
    assert float((counts > 0).double().mean()) == pytest.approx(1 - math.exp(-1), abs=0.05)


def test_spread_is_the_replicates_std_and_percentiles():
    values = np.random.default_rng(3).normal(size=101)
    stderr, (low, high) = spread(torch.tensor(values))
    assert stderr == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert (low, high) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), rel=1e-12)
    assert math.isnan(spread([])[0]) and math.isnan(spread([1.0, math.inf])[0])
    assert spread([1.0, math.inf, 2.0])[1][1] == math.inf


@pytest.mark.parametrize(("n", "dim", "rel"), [(40, 6, 1e-9), (5, 6, 1e-6), (300, 3, 1e-9)])
def test_bootstrap_frechet_equals_fid_of_the_resampled_features(n, dim, rel):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) @ torch.randn(dim, dim, generator=g).double()
    reference = feature_statistics(torch.randn(200, dim, generator=g, dtype=torch.float64) + 0.5)
    counts = bootstrap_counts(n, 6, 0)
    replicates = bootstrap_frechet(x, counts, reference)
    for b in range(6):
        expected = frechet_distance(*feature_statistics(resampled(x, counts[b])), *reference)
        assert float(replicates[b]) == pytest.approx(expected, rel=rel)
    point = frechet_distance(*feature_statistics(x), *reference)
    ones = torch.ones(1, n, dtype=torch.long)
    assert float(bootstrap_frechet(x, ones, reference)[0]) == pytest.approx(point, rel=rel)


def test_weighted_label_entropy_equals_the_entropy_of_the_resampled_labels():
    labels = torch.randint(10, (64,), generator=torch.Generator().manual_seed(4))
    counts = bootstrap_counts(64, 5, 1)
    replicates = entropy_bits(weighted_histograms(labels, counts, 10))
    for b in range(5):
        p = np.bincount(resampled(labels, counts[b]).numpy(), minlength=10) / 64
        expected = -sum(q * math.log2(q) for q in p if q > 0)
        assert float(replicates[b]) == pytest.approx(expected, rel=1e-12)


def test_text_intervals_equal_the_statistics_of_the_resampled_texts():
    tokens = torch.randint(6, (30, 9), generator=torch.Generator().manual_seed(5))
    plain = text_statistics(tokens, 6)
    stats = text_statistics(tokens, 6, Bootstrap(8, seed=3))
    assert {k: stats[k] for k in plain} == plain, "the point estimates do not change"
    per_sample = [unigram_entropy_bits(row, 6) for row in tokens]
    assert stats["sample_entropy_bits_stderr"] == pytest.approx(np.std(per_sample, ddof=1) / np.sqrt(30))
    assert plain["sample_entropy_bits"] == mean_sample_entropy_bits(tokens, 6)
    counts = bootstrap_counts(30, 8, 3)
    for name, statistic in [
        ("unigram_entropy_bits", lambda t: unigram_entropy_bits(t, 6)),
        ("distinct_1", lambda t: distinct_n(t, 1)),
        ("distinct_2", lambda t: distinct_n(t, 2)),
        ("distinct_4", lambda t: distinct_n(t, 4)),
    ]:
        replicates = [statistic(resampled(tokens, counts[b])) for b in range(8)]
        stderr, ci95 = spread(replicates)
        assert stats[f"{name}_stderr"] == pytest.approx(stderr, rel=1e-9), name
        assert stats[f"{name}_ci95"] == pytest.approx(ci95, rel=1e-9), name
    assert stats == text_statistics(tokens, 6, Bootstrap(8, seed=3)), "bit-identical when rerun"


def test_oracle_metrics_have_intervals_and_keep_their_values():
    joint = TabularJoint.random(3, 3, generator=torch.Generator().manual_seed(0))
    tokens = joint.sample(60, torch.Generator().manual_seed(1))
    options = check_options({"bootstrap": {"replicates": 7}})
    suite = MetricSuite(["exact_nll", "joint_distance"], options, seed=2)
    out = suite.reduce(joint, tokens, {})
    comparison = compare_to_joint(joint, tokens)
    assert (out["tv"], out["kl"], out["g_test_p_value"]) == (comparison.tv, comparison.kl, comparison.p_value)
    values = -joint.log_prob(tokens).numpy()
    assert out["nll"] == pytest.approx(values.mean()) and out["nll_stderr"] == pytest.approx(
        values.std(ddof=1) / np.sqrt(60)
    )
    exact = -joint.log_prob(joint.sample(60, torch.Generator().manual_seed(2))).numpy()
    assert out["reference_nll_stderr"] == pytest.approx(exact.std(ddof=1) / np.sqrt(60))
    counts = bootstrap_counts(60, 7, 2)
    for name in ("tv", "kl"):
        replicates = [getattr(compare_to_joint(joint, resampled(tokens, counts[b])), name) for b in range(7)]
        stderr, ci95 = spread(replicates)
        assert out[f"{name}_stderr"] == pytest.approx(stderr, rel=1e-9)
        assert out[f"{name}_ci95"] == pytest.approx(ci95, rel=1e-9)
    assert out == suite.reduce(joint, tokens, {}), "bit-identical when rerun"


def test_no_bootstrap_keeps_every_key_with_nan():
    tokens = torch.randint(4, (10, 5), generator=torch.Generator().manual_seed(6))
    stats = text_statistics(tokens, 4, Bootstrap(0, seed=0))
    assert math.isnan(stats["distinct_2_stderr"]) and all(math.isnan(v) for v in stats["distinct_2_ci95"])
    with pytest.raises(ValueError, match=r"metrics.bootstrap.replicates=-1 must be an integer >= 0"):
        check_options({"bootstrap": {"replicates": -1}})


def test_fid_mnist_intervals_keep_the_point_values_and_bootstrap_the_label_entropy():
    from unmask.data.mnist import load_mnist
    from unmask.metrics.fid import MNISTFeatureFID, with_interval

    metric = MNISTFeatureFID()
    images = load_mnist("val")[0][100:164]
    features = metric.features(images)
    plain, with_intervals = metric.score(features), metric.score(features, Bootstrap(6, seed=1))
    kept = {k for k in plain if k != "fid_mnist_data_same_n"}  # the floor's draw follows the seed (below)
    assert {k: with_intervals[k] for k in kept} == {k: plain[k] for k in kept}
    labels = metric.net.head(features).argmax(dim=1)
    counts = bootstrap_counts(64, 6, 1)
    replicates = []
    for b in range(6):
        p = np.bincount(resampled(labels, counts[b]).numpy(), minlength=10) / 64
        replicates.append(-sum(q * math.log2(q) for q in p if q > 0))
    assert with_intervals["label_entropy_bits_stderr"] == pytest.approx(np.std(replicates, ddof=1), rel=1e-9)
    real = metric.features(metric.real_images(64, seed=1))
    floor = with_interval("fid_mnist_data_same_n", real, metric.reference, Bootstrap(6, seed=1))
    assert {k: with_intervals[k] for k in floor} == floor, "the floor: a bootstrap over its n real images"
    # the floor's images are a draw without replacement fixed by the run's seed, another per seed
    picks = [metric.real_images(64, seed) for seed in (1, 1, 2)]
    assert torch.equal(picks[0], picks[1]) and not torch.equal(picks[0], picks[2])
    assert len({bytes(image.numpy()) for image in picks[0]}) == 64
    other = metric.score(features, Bootstrap(6, seed=2))
    assert other["fid_mnist"] == with_intervals["fid_mnist"]
    assert other["fid_mnist_data_same_n"] != with_intervals["fid_mnist_data_same_n"]
