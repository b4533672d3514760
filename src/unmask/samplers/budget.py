"""A budget of ``T`` denoiser calls, spent by any sampler or peer: the one mapping from a call
budget to a sampler's own keys, used by ``unmask-eval budget=T``, ``unmask-compare``, the figure
presets and the tests.

- ``steps`` where the sampler has it (the planned samplers; a peer's own total, e.g. LLaDA's);
- ``max_steps`` for the adaptive samplers (``threshold``, ``eb``, ``first_hitting``): at most ``T``;
- ``semi_ar`` without its total ``steps``: ``max(1, T // blocks)`` base steps per block, with
  ``blocks = L // block_length`` (at least one call per block, so below ``blocks`` it spends
  ``blocks``).

``T = "length"`` is one call per position: ``T = L``, the sequence length (with the untempered
``random`` sampler, the denoiser's own law: one token per call, each from its conditional).

A sampler with no such key (the ``fast_dllm`` peer stops by its threshold alone) has no budget:
``spend_budget`` refuses it rather than run it unbudgeted under a budget's name.
"""

from __future__ import annotations

from typing import Any

from unmask.checks import check_integer
from unmask.samplers.registry import sampler_parameters


def budget_key(name: str) -> str | None:
    """The key of sampler or peer ``name`` that a budget sets (``base_params.steps`` for
    ``semi_ar``), or ``None`` if it has none."""
    fields = sampler_parameters(name)
    if name == "semi_ar":
        return "base_params.steps"
    if "steps" in fields:
        return "steps"
    if "max_steps" in fields:
        return "max_steps"
    return None


LENGTH = "length"  # the budget of one call per position


def spend_budget(name: str, params: dict[str, Any], steps: int | str, length: int) -> dict[str, Any]:
    """``params`` of sampler ``name`` with a budget of ``steps`` calls (or ``"length"``: ``length``
    calls) on sequences of ``length`` applied (a new dict; ``ValueError`` for a sampler without a
    budget or a bad ``steps``)."""
    if steps == LENGTH:
        steps = length
    check_integer("budget", steps, note=f" (denoiser calls), or {LENGTH!r} (one call per position)")
    key = budget_key(name)
    if key is None:
        raise ValueError(
            f"sampler {name!r} has no call budget (no steps or max_steps: it stops by its own rule); "
            "set budget=null"
        )
    if name == "semi_ar" and params.get("steps") is not None:
        key = "steps"  # LLaDA's convention: the total, split over the blocks by the wrapper
    if key != "base_params.steps":
        return {**params, key: steps}
    block_length = params.get("block_length") or length
    blocks = max(1, length // int(block_length))
    return {**params, "base_params": {**(params.get("base_params") or {}), "steps": max(1, steps // blocks)}}
