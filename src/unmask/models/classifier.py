"""A small MNIST classifier whose penultimate features define the fast domain FID.

conv(1->32, 3x3) -> ReLU -> max-pool -> conv(32->64, 3x3) -> ReLU -> max-pool -> linear(1600->128)
-> ReLU (the 128-d features) -> linear(128->10). Input: images in [0, 1] (or uint8), 28 x 28.
"""

from __future__ import annotations

import torch
from torch import nn


class MNISTClassifier(nn.Module):
    def __init__(self, features: int = 128):
        super().__init__()
        self.features_dim = features
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 5 * 5, features),
            nn.ReLU(),
        )
        self.head = nn.Linear(features, 10)

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        return x.unsqueeze(1) if x.dim() == 3 else x

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
