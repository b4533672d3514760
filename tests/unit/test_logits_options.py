"""Options every sampler has: classifier-free guidance, top-k and nucleus filtering."""

import math

import pytest
import torch
from test_samplers import params_for

from conftest import ConditionalRandomNet, FixedLogits, RandomNetDenoiser
from unmask.models.oracle import ClassConditionalJoint
from unmask.models.pretrained import _Wrapped
from unmask.models.transformer import MaskedTransformer
from unmask.samplers import build, registered_samplers
from unmask.samplers.base import Trajectory
from unmask.samplers.logits import filter_rows

ALL = registered_samplers()


def with_options(name: str, steps: int, length: int, **options) -> dict:
    """``params_for`` with the logits options (semi_ar passes them to its base sampler)."""
    params = params_for(name, steps, length)
    if name == "semi_ar":
        params["base_params"] = {**params["base_params"], **options}
        return params
    return {**params, **options}


@pytest.mark.parametrize("name", ALL)
def test_guidance_runs_every_sampler_with_two_evaluations_per_call(name):
    denoiser = ConditionalRandomNet(6, 12)
    labels = torch.tensor([0, 2, 1])
    out = build(name, **with_options(name, 4, 12, cfg_scale=1.5)).sample(
        denoiser, 3, generator=torch.Generator().manual_seed(0), cond=labels
    )
    assert ((out.tokens >= 0) & (out.tokens < 6)).all()
    assert out.nfe == 2 * denoiser.calls and out.cost == out.nfe
    for seen in denoiser.labels_seen:  # the doubled batch: the classes, then the null label
        assert torch.equal(seen, torch.tensor([0, 2, 1, 3, 3, 3]))


@pytest.mark.parametrize("name", ALL)
def test_guidance_on_a_denoiser_without_classes_is_an_error_naming_cfg_scale(name):
    denoiser = RandomNetDenoiser(6, 12)
    sampler = build(name, **with_options(name, 4, 12, cfg_scale=2.0))
    with pytest.raises(ValueError, match=r"cfg_scale=2\.0 needs a class-conditional denoiser"):
        sampler.sample(denoiser, 2, generator=torch.Generator(), cond=torch.tensor([0, 1]))
    assert denoiser.calls == 0


def test_guidance_needs_class_ids():
    sampler = build("random", steps=4, cfg_scale=1.0)
    with pytest.raises(ValueError, match=r"cfg_scale=1\.0 needs cond"):
        sampler.sample(ConditionalRandomNet(6, 12), 2, generator=torch.Generator())
    with pytest.raises(ValueError, match=r"class ids outside 0\.\.3"):
        sampler.sample(ConditionalRandomNet(6, 12), 2, generator=torch.Generator(), cond=torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        sampler.sample(
            ConditionalRandomNet(6, 12), 2, generator=torch.Generator(), cond=torch.zeros(3).long()
        )


def test_zero_scale_is_the_conditional_model_with_one_evaluation_per_call():
    denoiser = ConditionalRandomNet(6, 12)
    out = build("confidence", steps=4).sample(
        denoiser, 2, generator=torch.Generator().manual_seed(0), cond=torch.tensor([1, 0])
    )
    assert out.nfe == denoiser.calls == 4
    assert all(torch.equal(seen, torch.tensor([1, 0])) for seen in denoiser.labels_seen)


def test_guided_logits_are_the_conditional_plus_the_scaled_difference():
    oracle = ClassConditionalJoint.random(num_classes=3, vocab_size=3, seq_len=3, seed=1)
    labels = torch.tensor([0, 1, 2, 2])
    init = torch.tensor([[3, 3, 3], [0, 3, 3], [3, 2, 3], [3, 3, 1]])
    sampler = build("random", steps=3, cfg_scale=2.0)
    run = Trajectory(oracle, 4, init, False, options=sampler, cond=labels)
    guided = run.predict(oracle, labels, 0)
    cond, uncond = oracle(init, labels), oracle(init, None)
    masked = init == 3
    torch.testing.assert_close(guided[masked], (cond + 2.0 * (cond - uncond))[masked])
    assert torch.isneginf(guided[~masked]).sum() == 2 * int((~masked).sum()), "observed rows stay one-hot"
    assert run.nfe == 2 and run.cost == 2.0


def test_linear_ramp_starts_at_the_conditional_model_and_grows_with_progress():
    oracle = ClassConditionalJoint.random(num_classes=2, vocab_size=3, seq_len=4, seed=2)
    labels = torch.tensor([0, 1])
    sampler = build("random", steps=4, cfg_scale=3.0, cfg_ramp="linear")
    run = Trajectory(oracle, 2, None, False, options=sampler, cond=labels)
    first = run.predict(oracle, labels, 0)
    assert torch.equal(first, oracle(run.tokens, labels)), "scale 0 at the first call"
    run.tokens[:, :2] = torch.tensor([[0, 1], [2, 2]])  # half of the positions revealed
    run.masked[:, :2] = False
    later = run.predict(oracle, labels, 1)
    cond, uncond = oracle(run.tokens, labels), oracle(run.tokens, None)
    torch.testing.assert_close(later[:, 2:], (cond + 1.5 * (cond - uncond))[:, 2:])


def test_partial_caching_with_guidance_doubles_the_refresh_cost():
    oracle = ClassConditionalJoint.random(num_classes=2, vocab_size=3, seq_len=3, seed=3)
    out = build("moment", steps=1, substeps=3, cfg_scale=1.0).sample(
        oracle, 4, generator=torch.Generator().manual_seed(0), cond=torch.tensor([0, 1, 0, 1])
    )
    # one guided encode (2) and refreshes of 3 then 2 rows, each for both halves: 2 * 5 / 3
    assert out.nfe == 2 and out.cost == pytest.approx(2 + 10 / 3)


def test_guidance_through_the_transformer_wrapper_with_partial_caching():
    torch.manual_seed(0)
    net = MaskedTransformer(5, 6, width=16, depth=1, heads=2, num_classes=2).eval()
    denoiser = _Wrapped(net, {})
    assert denoiser.num_classes == 2
    out = build("moment", steps=2, substeps=2, cfg_scale=2.0).sample(
        denoiser, 3, generator=torch.Generator().manual_seed(0), cond=torch.tensor([0, 1, 1])
    )
    assert ((out.tokens >= 0) & (out.tokens < 5)).all() and out.nfe == 4


def test_top_k_one_and_a_tiny_nucleus_give_argmax_tokens():
    logits = torch.randn(1, 10, 7, generator=torch.Generator().manual_seed(0))
    argmax = logits[0].argmax(dim=1)
    for options in ({"top_k": 1}, {"top_p": 1e-9}):
        out = build("random", steps=5, temperature=3.0, **options).sample(
            FixedLogits(logits), 8, generator=torch.Generator().manual_seed(1)
        )
        assert (out.tokens == argmax).all(), options


def test_filters_that_keep_every_token_change_nothing():
    denoiser = RandomNetDenoiser(7, 10)
    plain = build("moment", steps=4).sample(denoiser, 4, generator=torch.Generator().manual_seed(2))
    for options in ({"top_k": 7}, {"top_p": 1.0}):
        out = build("moment", steps=4, **options).sample(
            denoiser, 4, generator=torch.Generator().manual_seed(2)
        )
        assert torch.equal(out.tokens, plain.tokens), options


def test_filter_rows_keeps_the_top_k_and_the_smallest_nucleus_on_selected_rows_only():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]])
    logits = probs.log()[None]  # [1, 2, 4]
    top2 = filter_rows(logits, torch.tensor([0]), top_k=2, top_p=None, temperature=1.0)
    assert torch.isinf(top2[0, 0, 2:]).all() and torch.isfinite(top2[0, 0, :2]).all()
    assert torch.equal(top2[0, 1], logits[0, 1]), "unselected rows are untouched"
    assert torch.isfinite(logits).all(), "the input is not modified"
    nucleus = filter_rows(logits, torch.tensor([0, 1]), top_k=None, top_p=0.8, temperature=1.0)
    assert torch.isfinite(nucleus[0, 0]).tolist() == [True, True, False, False]  # 0.5 + 0.3 >= 0.8
    assert int(torch.isfinite(nucleus[0, 1]).sum()) == 4  # 0.25 * 3 < 0.8: all four
    sharp = filter_rows(logits, torch.tensor([0]), top_k=None, top_p=0.6, temperature=0.5)
    assert torch.isfinite(sharp[0, 0]).tolist() == [True, False, False, False]  # 0.5**2 / sum > 0.6


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"cfg_scale": -1.0}, "cfg_scale=-1.0"),
        ({"cfg_scale": math.nan}, "cfg_scale=nan"),
        ({"cfg_ramp": "cubic"}, "cfg_ramp='cubic'"),
        ({"top_k": 0}, "top_k=0"),
        ({"top_k": 2.5}, "top_k=2.5"),
        ({"top_p": 0.0}, "top_p=0.0"),
        ({"top_p": 1.5}, "top_p=1.5"),
    ],
)
@pytest.mark.parametrize("name", ALL)
def test_bad_logits_options_are_named(name, params, match):
    with pytest.raises(ValueError, match=match):
        build(name, **with_options(name, 4, 12, **params))


def test_nan_logits_under_a_filter_name_the_step():
    logits = torch.randn(1, 6, 4)
    logits[0, 3, 1] = math.nan
    with pytest.raises(ValueError, match="NaN or infinite logits at step 0"):
        build("random", steps=2, top_k=2).sample(FixedLogits(logits), 1, generator=torch.Generator())
