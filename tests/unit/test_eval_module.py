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


def test_a_shard_copied_under_another_batch_name_is_regenerated(tmp_path):
    import shutil

    from unmask.lightning.eval_module import load_shard, record_path, shard_path, write_shard

    for b in (0, 1):
        shard = {"batch": b, "tokens": torch.full((2, 3), b), "nfe": 1, "cost": 1.0, "seconds": 0.0}
        write_shard(shard_path(tmp_path, b), shard | {"started": 0.0, "finished": 1.0}, "key")
    assert load_shard(shard_path(tmp_path, 1), "key")["batch"] == 1
    shutil.copy(shard_path(tmp_path, 0), shard_path(tmp_path, 1))  # batch 0 over batch 1, record too
    shutil.copy(record_path(shard_path(tmp_path, 0)), record_path(shard_path(tmp_path, 1)))
    assert load_shard(shard_path(tmp_path, 1), "key") is None  # regenerated, never read as batch 1
    assert load_shard(shard_path(tmp_path, 0), "key")["batch"] == 0
