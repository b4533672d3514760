"""``build(name, **params)``: every sampler, and every peer (``peers.py``), by name, with its
parameters validated."""

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
    "low_confidence": LowConfidenceSampler,
    "hybrid": HybridSampler,
    "threshold": ThresholdSampler,
    "eb": EntropyBoundedSampler,
    "first_hitting": FirstHittingSampler,
    "remdm": ReMDMSampler,
    "semi_ar": SemiAutoregressiveSampler,
}


def registered_samplers() -> list[str]:
    return sorted(SAMPLERS)


def peer_samplers() -> list[str]:
    """The names of the peers (``peers.py``): samplers law-equal to a public code base."""
    from unmask.samplers.peers import PEERS  # peers build on this module's samplers

    return sorted(PEERS)


def sampler_parameters(name: str) -> set[str]:
    """The parameter names of sampler or peer ``name``."""
    from unmask.samplers.peers import PEERS

    if name in PEERS:
        return set(PEERS[name].parameters())
    if name in SAMPLERS:
        return {f.name for f in dataclasses.fields(SAMPLERS[name])}
    raise ValueError(f"unknown sampler {name!r}; known: {', '.join(registered_samplers() + peer_samplers())}")


def build(name: str, **params: Any):
    """The sampler or peer registered as ``name``, built with ``params`` (each validated)."""
    from unmask.samplers.peers import PEERS

    allowed = sampler_parameters(name)
    unknown = sorted(set(params) - allowed)
    if unknown:
        kind = f"peer {name!r} ({PEERS[name].source})" if name in PEERS else f"sampler {name!r}"
        raise ValueError(
            f"{kind} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters: {', '.join(sorted(allowed))}"
        )
    if "grid" in params and params["grid"] is not None:
        params["grid"] = tuple(params["grid"])
    if name in PEERS:
        return PEERS[name].make(**params)
    return SAMPLERS[name](**params)
