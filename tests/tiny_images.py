"""A tiny image-token model and a tiny FID feature network, for the ``fid`` tests.

``TinyImageModel`` has a ``vq`` attribute, so ``domain_of`` calls it an image model, and ``decode``
maps tokens ``[B, G * G]`` to RGB images ``[B, 3, G * P, G * P]`` in [0, 1] (each token a colour
patch of ``P x P`` pixels from a fixed random palette). ``stub_network`` stands in for the
Inception in unit tests (0.2 s per image on a CPU): a fixed function of ``inception_inputs``
``[B, 3, 299, 299]`` -> ``[B, DIM]`` (2 x 2 average pooling, a fixed random linear map, tanh), with
the interface of ``unmask.metrics.fid.FeatureNetwork`` and its own cache key."""

from __future__ import annotations

import torch

from unmask.metrics.fid import FeatureNetwork

DIM = 8


class TinyImageModel:
    def __init__(self, grid: int = 2, patch: int = 4, vocab_size: int = 6, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.grid, self.patch, self.vocab_size, self.seq_len = (grid, grid), patch, vocab_size, grid * grid
        self.vq = None  # an image model's VQ decoder (only its presence matters here)
        self.palette = torch.rand(vocab_size, 3, generator=g)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        b, (h, w) = tokens.shape[0], self.grid
        colours = self.palette[tokens].view(b, h, w, 3).permute(0, 3, 1, 2)
        return colours.repeat_interleave(self.patch, dim=2).repeat_interleave(self.patch, dim=3)


class StubFeatures(torch.nn.Module):
    def __init__(self, dim: int = DIM, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(12, dim, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, (2, 2)).flatten(1)  # [B, 12]
        return torch.tanh(pooled @ self.weight * 2)


def stub_network(device=None) -> FeatureNetwork:
    return FeatureNetwork(StubFeatures(), DIM, "stub-network-for-tests")
