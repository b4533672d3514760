"""The evaluator's plumbing without a Trainer: device moves reach wrapped networks, and the
progress hook sees every full denoiser call without changing what is sampled."""

import torch

from unmask.lightning.eval_module import SamplingEvaluator, modules_of, observed
from unmask.models.pretrained import load_denoiser
from unmask.samplers import build
from unmask.samplers.base import PartialDenoiser


def test_moving_the_evaluator_moves_the_networks_inside_a_wrapper_denoiser(tmp_path):
    denoiser = load_denoiser("mnist")  # a plain object holding the transformer and the VQ decoder
    assert not isinstance(denoiser, torch.nn.Module)
    assert {id(m) for m in modules_of(denoiser)} == {id(denoiser.net), id(denoiser.vq)}
    evaluator = SamplingEvaluator(denoiser, build("moment", steps=4), 4, 4, 0, tmp_path)
    evaluator.double()  # Lightning's .to(device) walks the same submodules
    assert next(denoiser.net.parameters()).dtype == torch.float64
    assert denoiser.vq.codebook.weight.dtype == torch.float64


def test_observed_denoiser_reports_each_full_call_and_keeps_samples_and_capabilities():
    denoiser = load_denoiser("mnist")
    calls = []
    watched = observed(denoiser, lambda: calls.append(1))
    assert isinstance(watched, PartialDenoiser)
    for sampler in (build("moment", steps=6), build("moment", steps=6, substeps=2)):
        calls.clear()
        plain = sampler.sample(denoiser, 3, generator=torch.Generator().manual_seed(1))
        seen = sampler.sample(watched, 3, generator=torch.Generator().manual_seed(1))
        assert torch.equal(plain.tokens, seen.tokens)
        assert len(calls) == seen.nfe == 6
    assert not isinstance(observed(lambda t, c=None: t, lambda: None), PartialDenoiser)
