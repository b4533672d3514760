import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unmask.samplers.schedules import MASKED_FRACTION, unmask_counts


@settings(max_examples=300, deadline=None)
@given(
    num_masked=st.lists(st.integers(0, 300), min_size=1, max_size=5),
    steps=st.integers(1, 64),
    schedule=st.sampled_from(sorted(MASKED_FRACTION)),
)
def test_counts_sum_to_masked_and_each_step_reveals_at_least_one(num_masked, steps, schedule):
    n = torch.tensor(num_masked)
    counts = unmask_counts(n, steps, schedule)
    assert counts.shape == (len(num_masked), steps)
    assert torch.equal(counts.sum(dim=1), n)
    assert (counts >= 0).all()
    for b, rows in enumerate(num_masked):
        if rows >= steps:
            assert (counts[b] >= 1).all()
        else:  # one per step, then nothing
            assert counts[b].tolist() == [1] * rows + [0] * (steps - rows)


def test_cosine_matches_maskgit_rule():
    # masked after step t = floor(L cos(pi/2 (t+1)/T)) when the clipping is inactive
    length, steps = 256, 12
    counts = unmask_counts(torch.tensor([length]), steps, "cosine")[0]
    remaining = length - counts.cumsum(0)
    expected = [math.floor(length * math.cos(math.pi / 2 * (t + 1) / steps)) for t in range(steps)]
    assert remaining.tolist() == expected


def test_one_step_reveals_everything_and_steps_equal_length_reveal_one_each():
    assert unmask_counts(torch.tensor([10]), 1, "linear").tolist() == [[10]]
    assert unmask_counts(torch.tensor([10]), 10, "cosine").tolist() == [[1] * 10]


@pytest.mark.parametrize("schedule", sorted(MASKED_FRACTION))
def test_masked_fraction_goes_from_one_to_zero(schedule):
    f = MASKED_FRACTION[schedule]
    assert f(torch.tensor(0.0, dtype=torch.float64)).item() == pytest.approx(1.0)
    assert f(torch.tensor(1.0, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)


def test_unknown_schedule_and_bad_steps_name_the_parameter():
    with pytest.raises(ValueError, match=r"schedule='cubic'.*known: arccos, cosine"):
        unmask_counts(torch.tensor([4]), 2, "cubic")
    with pytest.raises(ValueError, match="steps=0"):
        unmask_counts(torch.tensor([4]), 0, "cosine")


# Per-step counts of the peers' own code, as literal tables. The JAX rows were produced by
# google-research/maskgit's count computation (decode's mask_len) run in jax 0.4.38 on CPU; the
# valeoai rows by those repositories' torch formulas (Trainer/vit.py adap_sche,
# Sampler/confidence_sampler.py build_sequence, Sampler/halton_sampler.py), in torch float32.
PEER_COUNT_TABLES = [
    ("maskgit_jax", "cosine", 256, 8, [5, 15, 24, 31, 39, 45, 48, 49]),
    ("maskgit_jax", "cosine", 256, 12, [3, 6, 11, 15, 18, 22, 26, 28, 30, 31, 33, 33]),
    ("maskgit_jax", "cosine", 1024, 12, [9, 26, 43, 60, 74, 88, 101, 112, 120, 126, 132, 133]),
    ("maskgit_jax", "cosine", 49, 8, [1, 3, 5, 6, 7, 9, 9, 9]),
    ("maskgit_jax", "cosine", 64, 16, [1, 1, 1, 2, 3, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6, 6]),
    ("maskgit_jax", "cosine", 5, 8, [1, 1, 1, 1, 0, 0, 0, 1]),
    ("maskgit_jax", "cosine", 4, 3, [1, 2, 1]),
    ("maskgit_pytorch", "arccos", 256, 8, [1, 18, 26, 32, 38, 43, 48, 50]),
    ("maskgit_pytorch", "arccos", 256, 12, [1, 9, 13, 17, 19, 22, 24, 26, 28, 30, 32, 35]),
    ("maskgit_pytorch", "cosine", 256, 8, [1, 12, 22, 32, 41, 47, 51, 50]),
    ("maskgit_pytorch", "arccos", 49, 8, [1, 3, 5, 6, 7, 8, 9, 10]),
    ("halton_maskgit_confidence", "arccos", 256, 8, [1, 22, 24, 25, 27, 30, 38, 89]),
    ("halton_maskgit_confidence", "arccos", 256, 12, [1, 13, 15, 16, 15, 16, 18, 18, 20, 24, 29, 71]),
    ("halton_maskgit_confidence", "arccos", 49, 8, [1, 3, 5, 4, 5, 6, 8, 17]),
    ("halton_maskgit", "arccos", 256, 8, [20, 21, 21, 23, 25, 28, 35, 83]),
    ("halton_maskgit", "arccos", 256, 12, [13, 14, 14, 14, 15, 15, 16, 17, 20, 22, 28, 68]),
    ("halton_maskgit", "arccos", 49, 8, [3, 4, 4, 5, 5, 5, 7, 16]),
    ("llada", "linear", 10, 4, [3, 3, 2, 2]),
    ("llada", "linear", 32, 8, [4, 4, 4, 4, 4, 4, 4, 4]),
    ("llada", "linear", 3, 4, [1, 1, 1, 0]),
]


@pytest.mark.parametrize(("rule", "schedule", "length", "steps", "table"), PEER_COUNT_TABLES)
def test_count_rules_reproduce_the_peers_published_counts(rule, schedule, length, steps, table):
    counts = unmask_counts(torch.tensor([length]), steps, schedule, rule, span=length)
    assert counts[0].tolist() == table


def test_jax_float32_counts_differ_from_float64_where_n_cos_is_an_integer():
    # L = 256, T = 12: after step 8 of 12, 256 cos(pi/3) = 128 in exact arithmetic; float32 lands
    # on 127.99999, so JAX keeps one fewer position masked than the float64 floor
    jax = unmask_counts(torch.tensor([256]), 12, "cosine", "maskgit_jax")[0].tolist()
    ours = unmask_counts(torch.tensor([256]), 12, "cosine", "unmask")[0].tolist()
    assert jax[7:9] == [28, 30] and ours[7:9] == [27, 31]
    assert jax[:7] == ours[:7] and jax[9:] == ours[9:]


def test_valeoai_counts_are_on_the_span_and_cumulative_rules_count_given_positions():
    # confidence_sampler's targets count every known position: with 3 of 8 given and targets
    # 1, 2, 5, 8 (linear, 4 steps), the first two steps reveal nothing
    counts = unmask_counts(torch.tensor([5]), 4, "linear", "halton_maskgit_confidence", span=8)
    assert counts[0].tolist() == [0, 0, 2, 3]
    assert int(counts.sum()) == 5


def test_a_count_rule_that_cannot_cover_the_positions_is_refused_naming_it():
    # adap_sche with one step divides 0 by 0 (linspace(1, 0, 1) = [1], arccos(1) = 0)
    with pytest.raises(ValueError, match=r"counts='maskgit_pytorch' with steps=1 reveals 0 of the 12"):
        unmask_counts(torch.tensor([12]), 1, "arccos", "maskgit_pytorch", span=12)
