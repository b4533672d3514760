"""Pure-PyTorch samplers for masked diffusion models (no Hydra, no Lightning, no I/O)."""

from unmask.samplers.base import Denoiser, PartialDenoiser, SampleOutput, Sampler, StepRecord
from unmask.samplers.registry import SAMPLERS, build, registered_samplers

__all__ = [
    "SAMPLERS",
    "Denoiser",
    "PartialDenoiser",
    "SampleOutput",
    "Sampler",
    "StepRecord",
    "build",
    "registered_samplers",
]
