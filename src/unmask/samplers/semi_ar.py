"""Block-wise (semi-autoregressive) generation, as LLaDA samples text (Nie et al. 2025,
arXiv 2502.09992; ML-GSAI/LLaDA ``generate.py``): cut the positions into blocks of
``block_length`` and generate them left to right, each with the ``base`` sampler, while later
blocks stay masked (the denoiser sees them as masks). The base sampler (any registered one but
``semi_ar`` or a peer, built from ``base_params``) runs on one block at a time: its logits options
(``temperature``, ``cfg_scale``, ``top_k``, ...) apply to every call, and positions given in
``init`` (a prompt) are kept; a block with nothing to generate costs nothing.

- ``align="start"``: blocks start at position 0; ``block_length`` must divide ``L``.
  ``align="prompt"`` (LLaDA's split): blocks start at each row's first masked position (after
  its prompt), and ``block_length`` must divide what is left of the row.
- ``block_length = None``: one block (LLaDA's default, ``block_length = gen_length``).
- ``steps`` (LLaDA's ``steps``): the total over the blocks, ``steps / blocks`` per block (it must
  divide, as LLaDA asserts); ``None`` leaves the base sampler's own ``steps``, per block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from unmask.checks import check_integer
from unmask.samplers.arguments import check_sample_arguments
from unmask.samplers.base import Denoiser, SampleOutput, StepSampler, Trajectory
from unmask.samplers.catalog import build_base

ALIGNS = ("start", "prompt")


@dataclass(frozen=True)
class SemiAutoregressiveSampler:
    block_length: int | None = 32
    base: str = "confidence"
    base_params: dict[str, Any] | None = None
    align: str = "start"
    steps: int | None = None

    def __post_init__(self) -> None:
        check_integer("block_length", self.block_length, or_none="null (one block)")
        if self.align not in ALIGNS:
            raise ValueError(f"align={self.align!r} must be one of {', '.join(ALIGNS)}")
        steps = self.steps
        check_integer("steps", steps, note=" (the total over the blocks)", or_none="null")
        if self.base == "semi_ar":
            raise ValueError("base='semi_ar': the base sampler of semi_ar cannot be semi_ar")
        params = dict(self.base_params or {})
        try:
            inner = build_base(self.base, **params)
        except ValueError as err:
            raise ValueError(f"base={self.base!r}, base_params: {err}") from None
        if steps is not None and not isinstance(inner, StepSampler):
            raise ValueError(f"steps={steps}: the base sampler {self.base!r} has no steps (it is adaptive)")
        object.__setattr__(self, "base_params", params)
        object.__setattr__(self, "inner", inner)  # the built base sampler (not a parameter)

    def check_denoiser(self, denoiser: Denoiser, masked: torch.Tensor | None = None) -> None:
        """Checks before any compute, for the ``[B, L]`` masked set at the start (default: all)."""
        self.checked_plan(denoiser, masked)

    def checked_plan(self, denoiser: Denoiser, masked: torch.Tensor | None = None):
        """``(block_of [B, L], number of blocks, the base sampler for one block)``, after every
        check that ``check_denoiser`` makes."""
        if self.align == "start" and self.block_length is not None and denoiser.seq_len % self.block_length:
            raise ValueError(
                f"block_length={self.block_length} does not divide the sequence length L={denoiser.seq_len}"
            )
        if masked is None:
            masked = torch.ones(1, denoiser.seq_len, dtype=torch.bool)
        block_of, blocks = self.blocks(masked)
        widest = int((block_of == 0).sum(dim=1).max()) if blocks else 0
        inner = self.block_sampler(max(blocks, 1), max(widest, 1))
        self.inner.check_denoiser(denoiser)
        return block_of, blocks, inner

    def blocks(self, masked: torch.Tensor) -> tuple[torch.Tensor, int]:
        """``(block_of [B, L], number of blocks)`` for the ``[B, L]`` masked set at the start: the
        block of each position (-1 = before the first block: a prompt under ``align="prompt"``),
        validated against ``block_length``."""
        batch, length = masked.shape
        position = torch.arange(length, device=masked.device)[None, :].expand(batch, -1)
        if self.align == "start":
            start = torch.zeros(batch, dtype=torch.long, device=masked.device)
        else:
            start = torch.where(masked.any(dim=1), masked.long().argmax(dim=1), length)
        size = length - start
        if self.block_length is None:
            return torch.where(position >= start[:, None], 0, -1), 1
        ragged = (size % self.block_length != 0) & (size > 0)
        if ragged.any():
            b = int(ragged.nonzero()[0])
            raise ValueError(
                f"block_length={self.block_length} does not divide the {int(size[b])} positions of row {b} "
                f"after its prompt (align=prompt)"
            )
        relative = position - start[:, None]
        block_of = torch.where(relative >= 0, relative // self.block_length, -1)
        return block_of, int(size.max()) // self.block_length

    def block_sampler(self, blocks: int, block_length: int):
        """The base sampler with ``steps / blocks`` steps when ``steps`` is given, checked to fit."""
        inner = self.inner
        if self.steps is not None:
            if self.steps % blocks:
                raise ValueError(f"steps={self.steps} is not a multiple of the {blocks} blocks")
            inner = dataclasses.replace(inner, steps=self.steps // blocks)
        if isinstance(inner, StepSampler):
            try:
                inner.check_length(block_length)
            except ValueError:
                where = f"steps={self.steps} / {blocks} blocks:" if self.steps is not None else "base_params:"
                raise ValueError(
                    f"{where} steps={inner.steps} exceeds block_length={block_length} (steps are per block)"
                ) from None
        return inner

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
        check_sample_arguments(denoiser, batch_size, generator, cond, init, trace)
        run = Trajectory(denoiser, batch_size, init, trace, options=self.inner, cond=cond)
        block_of, blocks, inner = self.checked_plan(denoiser, run.masked)
        inner = inner.for_denoiser(denoiser)
        for block in range(blocks):
            with run.region(block_of == block, block):
                if bool(run.masked.any()):
                    inner.generate(run, denoiser, cond, generator)
        return run.output()
