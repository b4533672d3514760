"""Pure-PyTorch samplers for masked diffusion models (no Hydra, no Lightning, no I/O)."""

from unmask.samplers.base import Denoiser, PartialDenoiser, SampleOutput, Sampler, StepRecord
from unmask.samplers.registry import SAMPLERS, build, peer_samplers, registered_samplers, sampler_parameters

__all__ = [
    "SAMPLERS",
    "Denoiser",
    "PartialDenoiser",
    "SampleOutput",
    "Sampler",
    "StepRecord",
    "build",
    "peer_samplers",
    "registered_samplers",
    "sampler_parameters",
]
