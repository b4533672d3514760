"""Adapters that put other people's models behind the ``Denoiser`` contract.

``HFMaskedLM``: a Hugging Face masked LM (``AutoModelForMaskedLM``) loaded from a local path
(``trust_remote_code`` for MDLM-style repos). Our tokens are the model's ids ``0 .. V-1``
(``V`` = its vocabulary size) and our mask id is ``V``; before each call our mask id is replaced by
the model's own mask token id, and the logits of the mask token and of any ``banned_ids``
(special tokens) are set to ``-inf`` so that they are never sampled. A fixed ``prompt`` (ids or
text, with a tokenizer) is prepended to every sequence and its logits are dropped:
generation is conditioned on it.

``ModuleDenoiser``: any ``torch.nn.Module`` whose call returns logits ``[B, L, >= V]`` (or an
object with ``.logits``), with an optional mask-id translation. Build it from Hydra with
``_target_: unmask.models.hf.ModuleDenoiser`` and a nested ``module: {_target_: ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


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


class HFMaskedLM:
    def __init__(
        self,
        path: str | os.PathLike,
        seq_len: int,
        prompt: str | Sequence[int] | None = None,
        trust_remote_code: bool = False,
        mask_token_id: int | None = None,
        banned_ids: Sequence[int] = (),
        device: str = "cpu",
    ):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        path = os.fspath(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"model.path={path!r} is not a local directory (no hub access at run time)"
            )
        self.model = (
            AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=trust_remote_code).to(device).eval()
        )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError):
            self.tokenizer = None
        if mask_token_id is None:
            mask_token_id = getattr(self.tokenizer, "mask_token_id", None)
        if mask_token_id is None:
            raise ValueError(f"{path}: no tokenizer with a mask token; pass mask_token_id")
        self.vocab_size = int(self.model.config.vocab_size)
        self.seq_len = seq_len
        self.mask_token_id = int(mask_token_id)
        self.banned = torch.tensor(sorted({self.mask_token_id, *map(int, banned_ids)}), dtype=torch.long)
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("a text prompt needs a tokenizer in model.path")
            prompt = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        self.prompt = torch.tensor(list(prompt or []), dtype=torch.long)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and self.prompt.numel() + seq_len > limit:
            raise ValueError(
                f"prompt ({self.prompt.numel()}) + seq_len ({seq_len}) exceeds the model's {limit} positions"
            )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        ids = torch.where(tokens == self.vocab_size, torch.full_like(tokens, self.mask_token_id), tokens)
        prefix = self.prompt.to(ids.device).expand(ids.shape[0], -1)
        logits = _logits_of(self.model(input_ids=torch.cat([prefix, ids], dim=1)))[:, prefix.shape[1] :]
        logits = logits[..., : self.vocab_size].float().clone()
        logits[..., self.banned.to(logits.device)] = -torch.inf
        return logits

    def decode(self, tokens: torch.Tensor) -> list[str]:
        if self.tokenizer is None:
            return [" ".join(map(str, row.tolist())) for row in tokens]
        return self.tokenizer.batch_decode(tokens.tolist())
