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
