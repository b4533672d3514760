"""``build(name, **params)``: every sampler, and every peer (``peers.py``), by name, with its
parameters validated."""

from __future__ import annotations

import dataclasses
from typing import Any

from unmask.samplers.catalog import BASE_SAMPLERS, build_dataclass, check_parameters
from unmask.samplers.peers import PEERS
from unmask.samplers.semi_ar import SemiAutoregressiveSampler

SAMPLERS: dict[str, type] = {**BASE_SAMPLERS, "semi_ar": SemiAutoregressiveSampler}


def registered_samplers() -> list[str]:
    return sorted(SAMPLERS)


def peer_samplers() -> list[str]:
    """The names of the peers (``peers.py``): samplers law-equal to a public code base."""
    return sorted(PEERS)


def sampler_parameters(name: str) -> set[str]:
    """The parameter names of sampler or peer ``name``."""
    if name in PEERS:
        return set(PEERS[name].parameters())
    if name in SAMPLERS:
        return {f.name for f in dataclasses.fields(SAMPLERS[name])}
    raise ValueError(f"unknown sampler {name!r}; known: {', '.join(registered_samplers() + peer_samplers())}")


def build(name: str, **params: Any):
    """The sampler or peer registered as ``name``, built with ``params`` (each validated)."""
    if name in PEERS:
        check_parameters(f"peer {name!r} ({PEERS[name].source})", params, sampler_parameters(name))
        if params.get("grid") is not None:
            params = {**params, "grid": tuple(params["grid"])}
        return PEERS[name].make(**params)
    sampler_parameters(name)  # names the known ones if unknown
    return build_dataclass(name, SAMPLERS[name], params)
