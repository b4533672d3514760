"""Training objectives for absorbing-state masked diffusion (pure functions).

- ``mdlm_nelbo``: MDLM's continuous-time NELBO with the linear schedule ``alpha_t = 1 - t``
  (Sahoo et al. 2024): ``t ~ U(0, 1)`` per sequence, each token masked with probability ``t``,
  loss ``= (1 / L) sum_{i masked} (1 / t) * (-log p(x_i | x_t))`` in nats per token. Its average
  is an upper bound on the negative log-likelihood per token.
- ``maskgit_loss``: MaskGIT's masked cross-entropy: a mask ratio ``cos(pi/2 * u)``, ``u ~ U(0, 1)``,
  at least one masked position, loss = mean cross-entropy over masked positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Model = Callable[[torch.Tensor], torch.Tensor]


def mask_tokens(tokens: torch.Tensor, masked: torch.Tensor, mask_id: int) -> torch.Tensor:
    return torch.where(masked, torch.full_like(tokens, mask_id), tokens)


def mdlm_nelbo(
    model: Model,
    tokens: torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
    eps: float = 1e-3,
) -> torch.Tensor:
    """Per-sequence NELBO (nats per token) ``[B]``; ``t`` is stratified over the batch."""
    batch, length = tokens.shape
    u = torch.rand(batch, generator=generator, device=tokens.device)
    t = (torch.arange(batch, device=tokens.device) + u) / batch  # low-variance stratified times
    t = eps + (1 - eps) * t[torch.randperm(batch, generator=generator, device=tokens.device)]
    masked = torch.rand(batch, length, generator=generator, device=tokens.device) < t[:, None]
    logits = model(mask_tokens(tokens, masked, mask_id))
    nll = F.cross_entropy(logits.transpose(1, 2).float(), tokens, reduction="none")  # [B, L]
    return (nll * masked).sum(dim=1) / (t * length)


def maskgit_loss(model: Model, tokens: torch.Tensor, mask_id: int, generator: torch.Generator | None = None):
    """Mean cross-entropy over masked positions with a cosine mask ratio."""
    batch, length = tokens.shape
    ratio = torch.cos(0.5 * math.pi * torch.rand(batch, generator=generator, device=tokens.device))
    count = torch.clamp((ratio * length).ceil().long(), 1, length)
    scores = torch.rand(batch, length, generator=generator, device=tokens.device)
    rank = scores.argsort(dim=1).argsort(dim=1)
    masked = rank < count[:, None]
    logits = model(mask_tokens(tokens, masked, mask_id))
    nll = F.cross_entropy(logits.transpose(1, 2).float(), tokens, reduction="none")
    return (nll * masked).sum() / masked.sum()
