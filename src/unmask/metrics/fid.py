"""Frechet distances between feature distributions (FID-style).

``frechet_distance``: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`` in float64, with
symmetric eigendecompositions (no complex sqrtm). ``MNISTFeatureFID``: the fast domain FID on the
penultimate features of the shipped MNIST classifier, against the MNIST test split; reference
statistics are computed once and cached under the data directory, keyed by the classifier's and
the data's sha256. It also reports the entropy (bits) of the predicted-label histogram, a
mode-coverage check (log2(10) = 3.32 for balanced digits). FID is biased upwards at small sample
sizes, so ``fid_mnist_data_same_n`` gives the FID of the same number of real validation images:
compare runs at equal ``n`` and against that floor.
"""

from __future__ import annotations

import math
import os

import torch


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = features.double()
    mu = x.mean(dim=0)
    centred = x - mu
    return mu, centred.T @ centred / max(1, x.shape[0] - 1)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    root1 = _sqrt_psd(sigma1)
    cross = _sqrt_psd(root1 @ sigma2 @ root1)
    return float(
        (mu1 - mu2).pow(2).sum() + torch.trace(sigma1) + torch.trace(sigma2) - 2 * torch.trace(cross)
    )


class MNISTFeatureFID:
    """Load once per process; ``__call__(images)`` -> ``{"fid_mnist": ..., "label_entropy_bits": ...}``."""

    def __init__(self, checkpoint: str = "mnist_classifier"):
        from unmask.data.assets import data_dir, fetch
        from unmask.data.mnist import load_mnist
        from unmask.io import sha256_of
        from unmask.models.checkpoint import load_card, load_model

        self.net = load_model(checkpoint)
        self.validation_images = load_mnist("val")[0]
        key = f"{load_card(checkpoint)['weights_sha256'][:16]}_{sha256_of(fetch('mnist'))[:16]}"
        cache = data_dir() / "fid" / f"mnist_test_{key}.pt"
        if cache.exists():
            self.reference = torch.load(cache, weights_only=True)
        else:
            images, _ = load_mnist("test")
            self.reference = feature_statistics(self._features(images))
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save(self.reference, cache.with_suffix(".tmp"))
            os.replace(cache.with_suffix(".tmp"), cache)

    @torch.no_grad()
    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net.features(b) for b in images.split(1000)])

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, float]:
        features = self._features(images)
        mu, sigma = feature_statistics(features)
        labels = torch.cat([self.net.head(f).argmax(dim=1) for f in features.split(1000)])
        p = torch.bincount(labels, minlength=10).double() / labels.numel()
        entropy = float(-(p[p > 0] * p[p > 0].log()).sum() / math.log(2))
        real = feature_statistics(self._features(self.validation_images[: images.shape[0]]))
        return {
            "fid_mnist": frechet_distance(mu, sigma, *self.reference),
            "fid_mnist_data_same_n": frechet_distance(*real, *self.reference),
            "label_entropy_bits": entropy,
        }
