"""Adapters that put other people's models behind the ``Denoiser`` contract.

``HFMaskedLM``: a Hugging Face masked LM (``AutoModelForMaskedLM``) from a local folder; it lives
in ``unmask.models.text`` with the LLaDA, Dream and MDLM adapters (the id, ban and prompt rules
are stated there) and is re-exported here.

``ModuleDenoiser``: any ``torch.nn.Module`` whose call returns logits ``[B, L, >= V]`` (or an
object with ``.logits``), with an optional mask-id translation. Build it from Hydra with
``_target_: unmask.models.hf.ModuleDenoiser`` and a nested ``module: {_target_: ...}``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unmask.models.text import HFMaskedLM


def _logits_of(output: Any) -> torch.Tensor:
    return output.logits if hasattr(output, "logits") else output


class ModuleDenoiser:
    def __init__(self, module: nn.Module, vocab_size: int, seq_len: int, mask_token_id: int | None = None):
        if vocab_size < 1 or seq_len < 1:
            raise ValueError(f"vocab_size={vocab_size} and seq_len={seq_len} must be >= 1")
        self.module = module.eval() if isinstance(module, nn.Module) else module
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.mask_token_id = vocab_size if mask_token_id is None else mask_token_id

    @property
    def device(self) -> torch.device:
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")

    def model_inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.where(tokens == self.vocab_size, torch.full_like(tokens, self.mask_token_id), tokens)

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        logits = _logits_of(self.module(self.model_inputs(tokens)))
        if logits.shape[-1] < self.vocab_size:
            raise ValueError(
                f"module returned {logits.shape[-1]} logits per position; vocab_size={self.vocab_size}"
            )
        return logits[..., : self.vocab_size].float()


__all__ = ["HFMaskedLM", "ModuleDenoiser"]
