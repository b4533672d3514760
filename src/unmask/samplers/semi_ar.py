"""Block-wise (semi-autoregressive) generation, as LLaDA samples text (Nie et al. 2025,
arXiv 2502.09992): cut the sequence into blocks of ``block_length`` positions and generate them
left to right, each with the ``base`` sampler, while later blocks stay masked (the denoiser sees
them as masks). The base sampler (any registered one but ``semi_ar``, built from
``base_params``) runs on one block at a time: its ``steps`` are per block, its logits options
(``temperature``, ``cfg_scale``, ``top_k``, ...) apply to every call, and positions given in
``init`` (a prompt) are kept; a block with nothing to generate costs nothing. ``block_length``
must divide the sequence length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from unmask.samplers.base import Denoiser, SampleOutput, StepSampler, Trajectory


@dataclass(frozen=True)
class SemiAutoregressiveSampler:
    block_length: int = 32
    base: str = "confidence"
    base_params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        length = self.block_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"block_length={length!r} must be an integer >= 1")
        if self.base == "semi_ar":
            raise ValueError("base='semi_ar': the base sampler of semi_ar cannot be semi_ar")
        from unmask.samplers.registry import build  # the registry imports this module

        params = dict(self.base_params or {})
        try:
            inner = build(self.base, **params)
        except ValueError as err:
            raise ValueError(f"base={self.base!r}, base_params: {err}") from None
        object.__setattr__(self, "base_params", params)
        object.__setattr__(self, "inner", inner)  # the built base sampler (not a parameter)

    def check_denoiser(self, denoiser: Denoiser) -> None:
        length = denoiser.seq_len
        if length % self.block_length:
            raise ValueError(
                f"block_length={self.block_length} does not divide the sequence length L={length}"
            )
        self.inner.check_denoiser(denoiser)
        if isinstance(self.inner, StepSampler):
            try:
                self.inner.check_length(self.block_length)
            except ValueError:
                raise ValueError(
                    f"base_params: steps={self.inner.steps} exceeds block_length={self.block_length} "
                    "(steps are per block)"
                ) from None

    def sample(
        self,
        denoiser: Denoiser,
        batch_size: int,
        *,
        generator: torch.Generator,
        cond: Any | None = None,
        init: torch.Tensor | None = None,
        trace: bool = False,
    ) -> SampleOutput:
        self.check_denoiser(denoiser)
        run = Trajectory(denoiser, batch_size, init, trace, options=self.inner, cond=cond)
        block_of = torch.arange(run.length, device=run.device) // self.block_length
        for block in range(run.length // self.block_length):
            with run.region(block_of == block, block):
                if bool(run.masked.any()):
                    self.inner.generate(run, denoiser, cond, generator)
        return run.output()
