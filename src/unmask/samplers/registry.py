"""``build(name, **params)``: every sampler by name, with its parameters validated."""

from __future__ import annotations

import dataclasses
from typing import Any

from unmask.samplers.adaptive import EntropyBoundedSampler, FirstHittingSampler, ThresholdSampler
from unmask.samplers.cts import (
    AncestralSampler,
    ConfidenceSampler,
    EntropySampler,
    HaltonSampler,
    MarginSampler,
    MomentSampler,
    RandomSampler,
)
from unmask.samplers.hybrid import HybridSampler
from unmask.samplers.maskgit import MaskGITSampler
from unmask.samplers.remdm import ReMDMSampler
from unmask.samplers.semi_ar import SemiAutoregressiveSampler

SAMPLERS: dict[str, type] = {
    "ancestral": AncestralSampler,
    "random": RandomSampler,
    "confidence": ConfidenceSampler,
    "margin": MarginSampler,
    "entropy": EntropySampler,
    "halton": HaltonSampler,
    "moment": MomentSampler,
    "maskgit": MaskGITSampler,
    "hybrid": HybridSampler,
    "threshold": ThresholdSampler,
    "eb": EntropyBoundedSampler,
    "first_hitting": FirstHittingSampler,
    "remdm": ReMDMSampler,
    "semi_ar": SemiAutoregressiveSampler,
}


def registered_samplers() -> list[str]:
    return sorted(SAMPLERS)


def build(name: str, **params: Any):
    """The sampler registered as ``name``, built with ``params`` (each validated)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(registered_samplers())}")
    cls = SAMPLERS[name]
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"sampler {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters: {', '.join(sorted(allowed))}"
        )
    if "grid" in params and params["grid"] is not None:
        params["grid"] = tuple(params["grid"])
    return cls(**params)
