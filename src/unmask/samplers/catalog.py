"""The single-rule samplers by name, and ``build_base(name, **params)`` with each parameter
checked: the samplers a wrapper (``semi_ar``) can run inside. ``registry.py`` adds the wrapper
and the peers on top, so nothing here imports them."""

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
from unmask.samplers.llada import LowConfidenceSampler
from unmask.samplers.maskgit import MaskGITSampler
from unmask.samplers.remdm import ReMDMSampler

BASE_SAMPLERS: dict[str, type] = {
    "ancestral": AncestralSampler,
    "random": RandomSampler,
    "confidence": ConfidenceSampler,
    "margin": MarginSampler,
    "entropy": EntropySampler,
    "halton": HaltonSampler,
    "moment": MomentSampler,
    "maskgit": MaskGITSampler,
    "low_confidence": LowConfidenceSampler,
    "hybrid": HybridSampler,
    "threshold": ThresholdSampler,
    "eb": EntropyBoundedSampler,
    "first_hitting": FirstHittingSampler,
    "remdm": ReMDMSampler,
}


def check_parameters(kind: str, params: dict[str, Any], allowed: set[str]) -> None:
    """A ``ValueError`` naming every key of ``params`` not in ``allowed``."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"{kind} has no parameter {names}; its parameters: {', '.join(sorted(allowed))}")


def build_dataclass(name: str, cls: type, params: dict[str, Any]):
    """``cls(**params)`` after checking the keys against its fields (``grid`` made a tuple)."""
    check_parameters(f"sampler {name!r}", params, {f.name for f in dataclasses.fields(cls)})
    if params.get("grid") is not None:
        params = {**params, "grid": tuple(params["grid"])}
    return cls(**params)


def build_base(name: str, **params: Any):
    """The single-rule sampler ``name`` built with ``params``."""
    if name not in BASE_SAMPLERS:
        known = ", ".join(sorted(BASE_SAMPLERS))
        raise ValueError(f"unknown sampler {name!r} (a base of semi_ar: no wrapper, no peer); known: {known}")
    return build_dataclass(name, BASE_SAMPLERS[name], params)
