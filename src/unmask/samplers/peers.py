"""Peer samplers: configurations of this package's samplers whose law equals that of a public
code base, built by name like any sampler (``build("llada", steps=64)``).

Each peer takes only the parameters its source has (under this package's names: ``temperature``
is the divisor of the logits, so valeoai's ``sm_temp`` is ``1 / temperature`` and its ``r_temp``
is ``alpha``); the rest of its law is fixed. Asking a peer for a parameter its source does not
have is an error naming the parameter. "Law-equal" means: same proposals, ranking, noise,
counts, temperature placement and ties, from the same state, given the same denoiser outputs;
the tests compare each peer with its law written out by enumeration on small exact joints.

Where this package and the source necessarily differ, the law does not: noise is float64 (the
JAX MaskGIT's Gumbel noise is float32); equal confidences are ranked by the lowest position (the
sources call ``torch.topk``, which leaves ties unspecified); a step that reveals nothing makes
no denoiser call (the sources call the network anyway); and the valeoai ports re-draw already
revealed tokens from the current prediction, which changes nothing for a denoiser that predicts
a visible token as itself (the exact conditional), while here revealed tokens are kept.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unmask.samplers.adaptive import EntropyBoundedSampler
from unmask.samplers.cts import AncestralSampler, HaltonSampler
from unmask.samplers.maskgit import MaskGITSampler
from unmask.samplers.semi_ar import SemiAutoregressiveSampler

LLADA_REMASKING = ("low_confidence", "random")


@dataclass(frozen=True)
class Peer:
    """A peer sampler: ``make(**params)`` builds it; ``source`` names the code it is law-equal to."""

    make: Callable[..., Any]
    source: str

    def parameters(self) -> dict[str, Any]:
        """The peer's parameters with their defaults."""
        return {n: p.default for n, p in inspect.signature(self.make).parameters.items()}


def llada(
    steps: int = 8,
    block_length: int | None = None,
    temperature: float = 0.0,
    remasking: str = "low_confidence",
) -> SemiAutoregressiveSampler:
    """LLaDA ``generate``: blocks after the prompt, ``steps`` in total (``steps / blocks`` per
    block), LLaDA's counts; ``low_confidence`` or ``random`` remasking (no CFG: LLaDA's masks
    the prompt, which needs the prompt conditioning of the real-model adapters)."""
    if remasking not in LLADA_REMASKING:
        raise ValueError(f"remasking={remasking!r} must be one of {', '.join(LLADA_REMASKING)}")
    base = "low_confidence" if remasking == "low_confidence" else "random"
    params = {"steps": steps, "schedule": "linear", "counts": "llada", "temperature": temperature}
    return SemiAutoregressiveSampler(
        block_length=block_length, base=base, base_params=params, align="prompt", steps=steps
    )


def fast_dllm(
    threshold: float | None = 0.9,
    factor: float | None = None,
    block_length: int | None = None,
    temperature: float = 0.0,
) -> SemiAutoregressiveSampler:
    """Fast-dLLM ``generate`` with ``threshold`` (or ``factor``, with ``threshold=None``): blocks
    after the prompt, each decoded until done, no call budget."""
    params = {"threshold": threshold, "factor": factor, "temperature": temperature}
    return SemiAutoregressiveSampler(
        block_length=block_length, base="threshold", base_params=params, align="prompt"
    )


def maskgit_jax(steps: int = 12, alpha: float = 4.5, schedule: str = "cosine") -> MaskGITSampler:
    """google-research/maskgit ``decode`` (``num_iter = steps``, ``choice_temperature = alpha``;
    4.5 is MaskGIT's ImageNet setting), tokens at temperature 1 as in that code."""
    return MaskGITSampler(steps=steps, alpha=alpha, schedule=schedule, counts="maskgit_jax", anneal="jax")


def maskgit_pytorch(
    steps: int = 12, alpha: float = 4.5, temperature: float = 1.0, schedule: str = "arccos"
) -> MaskGITSampler:
    """valeoai/Maskgit-pytorch ``Trainer/vit.py`` ``sample`` with ``randomize="linear"`` and no
    CFG (``w = 0``; its CFG ramps with the step index, which is not offered here)."""
    return valeoai_maskgit("maskgit_pytorch", steps, alpha, temperature, schedule)


def halton_maskgit_confidence(
    steps: int = 12, alpha: float = 4.5, temperature: float = 1.0, schedule: str = "arccos"
) -> MaskGITSampler:
    """valeoai's ``Sampler/confidence_sampler.py`` (Halton-MaskGIT's confidence baseline) with
    ``randomize="linear"`` and ``w = 0``."""
    return valeoai_maskgit("halton_maskgit_confidence", steps, alpha, temperature, schedule)


def valeoai_maskgit(
    counts: str, steps: int, alpha: float, temperature: float, schedule: str
) -> MaskGITSampler:
    """The two valeoai MaskGIT ports differ only in their count rule; both anneal as
    ``alpha (1 - t / (T - 1))``."""
    return MaskGITSampler(
        steps=steps, alpha=alpha, temperature=temperature, schedule=schedule, counts=counts, anneal="pytorch"
    )


def halton_maskgit(
    steps: int = 12, temperature: float = 1.0, grid: tuple[int, int] | None = None
) -> HaltonSampler:
    """valeoai/Halton-MaskGIT ``HaltonSampler`` with a constant temperature
    (``sm_temp_min = sm_temp_max``), ``randomize=False``, ``top_k = -1``, ``w = 0``, from an
    all-mask start; ``grid`` ``None`` = the denoiser's grid."""
    return HaltonSampler(
        steps=steps,
        temperature=temperature,
        grid=None if grid is None else tuple(grid),
        schedule="arccos",
        counts="halton_maskgit",
    )


def mdlm(steps: int = 8, temperature: float = 1.0) -> AncestralSampler:
    """MDLM's ``ddpm`` / ``ddpm_cache`` sampler under its log-linear noise (the two have one law:
    the cache only skips the network when nothing changed, as ``ancestral`` does)."""
    return AncestralSampler(steps=steps, temperature=temperature, schedule="linear")


def eb_sampler(gamma: float = 0.1, proxy: str = "entropy", temperature: float = 1.0) -> EntropyBoundedSampler:
    """EB-Sampler (Ben-Hamu et al. 2025) as its paper states it (Algorithm 1); no public code of
    it was available to compare with, so this is law-equal to the paper, not to a code base."""
    return EntropyBoundedSampler(gamma=gamma, proxy=proxy, temperature=temperature)


PEERS: dict[str, Peer] = {
    "llada": Peer(llada, "ML-GSAI/LLaDA generate.py: generate (remasking low_confidence or random)"),
    "fast_dllm": Peer(
        fast_dllm, "NVlabs/Fast-dLLM llada/generate.py: generate with get_transfer_index(_dynamic)"
    ),
    "maskgit_jax": Peer(maskgit_jax, "google-research/maskgit libml/parallel_decode.py: decode"),
    "maskgit_pytorch": Peer(maskgit_pytorch, "valeoai/Maskgit-pytorch Trainer/vit.py: MaskGIT.sample"),
    "halton_maskgit_confidence": Peer(
        halton_maskgit_confidence, "valeoai/Maskgit-pytorch Sampler/confidence_sampler.py: ConfidenceSampler"
    ),
    "halton_maskgit": Peer(halton_maskgit, "valeoai/Halton-MaskGIT Sampler/halton_sampler.py: HaltonSampler"),
    "mdlm": Peer(mdlm, "kuleshov-group/mdlm diffusion.py: ddpm / ddpm_cache sampling"),
    "eb_sampler": Peer(eb_sampler, "Ben-Hamu et al. 2025 (arXiv 2505.24857), Algorithm 1 (paper, not code)"),
}
