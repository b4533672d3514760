"""A small VQ autoencoder: 28 x 28 grey images <-> a 7 x 7 grid of codebook ids.

Encoder: two stride-2 convolutions (28 -> 14 -> 7) and a 1 x 1 projection to ``code_dim``;
each of the 49 vectors is replaced by its nearest codebook entry (straight-through gradient);
the decoder mirrors the encoder with transposed convolutions and a sigmoid. Loss: MSE
reconstruction + codebook loss + ``commitment`` x commitment loss (van den Oord et al. 2017).
Unused codes are re-initialised from encoder outputs during training (``restart_dead_codes``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VQAutoencoder(nn.Module):
    def __init__(
        self, codebook_size: int = 128, code_dim: int = 32, hidden: int = 64, commitment: float = 0.25
    ):
        super().__init__()
        if codebook_size < 2 or code_dim < 1 or hidden < 2:
            raise ValueError("codebook_size >= 2, code_dim >= 1 and hidden >= 2 are required")
        self.codebook_size, self.code_dim, self.commitment = codebook_size, code_dim, commitment
        self.grid = (7, 7)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, hidden // 2, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, code_dim, 1),
        )
        self.codebook = nn.Embedding(codebook_size, code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, hidden, 3, 1, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, 1, 4, 2, 1),
        )

    @staticmethod
    def to_unit(images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, 28, 28]`` (or floats in [0, 1]) -> float ``[B, 1, 28, 28]`` in [0, 1]."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        return x.unsqueeze(1) if x.dim() == 3 else x

    def _latents(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.to_unit(images)).permute(0, 2, 3, 1)  # [B, 7, 7, D]

    def _nearest(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.reshape(-1, self.code_dim)
        distances = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ self.codebook.weight.T
            + self.codebook.weight.pow(2).sum(1)[None]
        )
        return distances.argmin(dim=1).view(z.shape[:-1])

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, 49]`` (row-major over the 7 x 7 grid)."""
        return self._nearest(self._latents(images)).reshape(images.shape[0], -1)

    def encode_all(self, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """``encode`` of a whole image set, ``batch`` images at a time on the model's device, without
        gradients; codes ``[N, 49]`` on the CPU."""
        device = next(self.parameters()).device
        with torch.no_grad():
            return torch.cat([self.encode(chunk.to(device)).cpu() for chunk in images.split(batch)])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 28, 28]`` in [0, 1] from codes ``[B, 49]``."""
        if codes.dim() != 2 or codes.shape[1] != 49:
            raise ValueError(f"codes must be [B, 49], got {tuple(codes.shape)}")
        if ((codes < 0) | (codes >= self.codebook_size)).any():
            raise ValueError(f"codes must be in 0..{self.codebook_size - 1}")
        z = self.codebook(codes).view(codes.shape[0], 7, 7, self.code_dim).permute(0, 3, 1, 2)
        return torch.sigmoid(self.decoder(z)).squeeze(1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruction and losses for training."""
        z = self._latents(images)
        codes = self._nearest(z)
        quantised = self.codebook(codes)
        codebook_loss = F.mse_loss(quantised, z.detach())
        commitment_loss = F.mse_loss(z, quantised.detach())
        straight = z + (quantised - z).detach()
        recon = torch.sigmoid(self.decoder(straight.permute(0, 3, 1, 2))).squeeze(1)
        reconstruction = F.mse_loss(recon, self.to_unit(images).squeeze(1))
        loss = reconstruction + codebook_loss + self.commitment * commitment_loss
        return {
            "loss": loss,
            "reconstruction": reconstruction,
            "codes": codes,
            "latents": z.detach(),
            "recon": recon,
        }

    @torch.no_grad()
    def restart_dead_codes(
        self, usage: torch.Tensor, latents: torch.Tensor, generator: torch.Generator
    ) -> int:
        """Re-initialise codes with zero ``usage`` to random encoder outputs; returns how many."""
        dead = (usage == 0).nonzero().squeeze(1)
        if dead.numel() == 0:
            return 0
        flat = latents.reshape(-1, self.code_dim)
        pick = torch.randint(0, flat.shape[0], (dead.numel(),), generator=generator)
        self.codebook.weight[dead] = flat[pick]
        return int(dead.numel())
