"""Row statistics and exact draws against direct float64 computations."""

import math

import pytest
import torch

from unmask.samplers import rows as rows_module
from unmask.samplers.gumbel import gumbel64, uniform64
from unmask.samplers.rows import NonFiniteLogitsError, draw_rows, row_stats


@pytest.mark.parametrize("vocab", [2, 7, 64, 100, 1024])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_row_statistics_equal_float64_reference(vocab, temperature):
    g = torch.Generator().manual_seed(vocab)
    logits = torch.randn(3, 50, vocab, generator=g) * 4
    rows = torch.tensor([0, 5, 49, 50, 77, 149])
    beta = 1.8
    stats = row_stats(logits, rows, temperature=temperature, moment_beta=beta, margin=True, entropy=True)
    z = logits.reshape(-1, vocab)[rows].double() / temperature
    p = torch.softmax(z, dim=1)
    top2 = p.topk(min(2, vocab), dim=1).values
    torch.testing.assert_close(-stats.log_norm, p.max(dim=1).values.log(), rtol=0, atol=1e-5)
    torch.testing.assert_close(stats.log_moment, (p**beta).sum(dim=1).log(), rtol=0, atol=1e-5)
    torch.testing.assert_close(stats.margin, top2[:, 0] - top2[:, 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(stats.entropy, -(p * p.log()).sum(dim=1), rtol=0, atol=1e-5)


def test_statistics_do_not_depend_on_chunk_size(monkeypatch):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 64, 300, generator=g)
    rows = torch.arange(0, 256, 3)
    u = uniform64((rows.shape[0],), g, "cpu")
    whole = row_stats(logits, rows, moment_beta=2.0), draw_rows(logits, rows, u)
    monkeypatch.setattr(rows_module, "CHUNK_ELEMENTS", 700)  # two rows per chunk
    small = row_stats(logits, rows, moment_beta=2.0), draw_rows(logits, rows, u)
    torch.testing.assert_close(whole[0].log_moment, small[0].log_moment)
    assert torch.equal(whole[1][0], small[1][0])


def test_draws_follow_softmax_within_sampling_noise():
    # seed 0, 400k draws of one row with V=37 (padded blocks): chi-square p-value > 1e-4
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 1, 37, generator=g) * 2
    n = 400_000
    rows = torch.zeros(n, dtype=torch.long)
    tokens, log_prob = draw_rows(logits, rows, uniform64((n,), g, "cpu"), temperature=0.8)
    p = torch.softmax(logits[0, 0].double() / 0.8, dim=0)
    counts = torch.bincount(tokens, minlength=37).double()
    chi2 = float(((counts - n * p) ** 2 / (n * p)).sum())
    p_value = float(torch.special.gammaincc(torch.tensor(36 / 2.0), torch.tensor(chi2 / 2)))
    assert p_value > 1e-4, (chi2, p_value)
    torch.testing.assert_close(log_prob, p.log()[tokens], rtol=0, atol=1e-5)


def test_tail_tokens_are_reachable_unlike_float32_gumbel():
    # token 1 has probability e^-25 ~ 1.4e-11: float32 Gumbel-max can never pick it (its largest
    # noise is -log(-log(1 - 2^-24)) ~ 16.6 < 25); the float64 inverse CDF picks it exactly when
    # the uniform lands in its interval of width 1.4e-11.
    logits = torch.tensor([[[0.0, -25.0, -200.0]]])
    rows = torch.zeros(3, dtype=torch.long)
    p1 = math.exp(-25) / (1 + math.exp(-25))
    u = torch.tensor([1 - p1 * 1.5, 1 - p1 * 0.5, 1 - p1 * 0.001], dtype=torch.float64)
    tokens, _ = draw_rows(logits, rows, u)
    assert tokens.tolist() == [0, 1, 1]
    float32_gumbel_max = -torch.log(-torch.log(torch.tensor(1 - 2**-24, dtype=torch.float32)))
    assert float32_gumbel_max < 25


def test_noise_is_float64():
    g = torch.Generator().manual_seed(0)
    assert gumbel64((5,), g, "cpu").dtype == torch.float64
    assert uniform64((5,), g, "cpu").dtype == torch.float64
    # float64 Gumbel reaches values float32 noise cannot
    assert gumbel64((2_000_000,), g, "cpu").max() > 14


def test_nan_and_inf_rows_are_reported():
    logits = torch.zeros(1, 4, 5)
    logits[0, 2, 1] = float("nan")
    logits[0, 3] = float("-inf")
    with pytest.raises(NonFiniteLogitsError) as err:
        row_stats(logits, torch.arange(4))
    assert err.value.rows.tolist() == [2, 3]
    with pytest.raises(NonFiniteLogitsError):
        draw_rows(logits, torch.tensor([2]), torch.tensor([0.5], dtype=torch.float64))
    with pytest.raises(NonFiniteLogitsError):
        draw_rows(logits, torch.tensor([3]), torch.tensor([0.5], dtype=torch.float64), temperature=0.0)


def test_argmax_draw_at_zero_temperature():
    logits = torch.tensor([[[0.0, 3.0, 1.0], [5.0, 0.0, 0.0]]])
    tokens, _ = draw_rows(logits, torch.tensor([0, 1]), torch.rand(2, dtype=torch.float64), temperature=0.0)
    assert tokens.tolist() == [1, 0]
