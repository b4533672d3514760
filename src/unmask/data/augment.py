"""Affine augmentation of MNIST images (uint8 ``[N, 28, 28]``), for training the token denoiser on more
than the 50k training digits.

``random_affine_copies(images, copies, seed)`` returns ``copies`` new versions of every image, each moved
by its own random affine map about the image centre: a rotation uniform in ``+-max_degrees``, a scale
uniform in ``[1 - max_scale, 1 + max_scale]`` and a translation uniform in ``+-max_shift`` pixels on each
axis (bilinear resampling, zeros outside, rounded back to uint8). The maps are small, so a copy is still
a centred digit of the same class; the tokenizer then encodes copies like originals. Seeded: the same
arguments give the same copies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def affine_images(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``images`` uint8 ``[N, H, W]`` resampled through the maps ``theta`` ``[N, 2, 3]`` (output pixel
    ``p`` reads the input at ``theta @ [p, 1]``, both in ``affine_grid``'s normalised coordinates)."""
    x = images.float()[:, None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, 0].round().clamp(0, 255).to(torch.uint8)


def random_affine_copies(
    images: torch.Tensor,
    copies: int,
    seed: int,
    max_degrees: float = 10.0,
    max_scale: float = 0.1,
    max_shift: float = 1.0,
    chunk: int = 10_000,
) -> torch.Tensor:
    """``copies`` randomly moved versions of each image, ``[copies * N, H, W]`` uint8 (see module doc);
    copy ``c`` of image ``i`` is row ``c * N + i``."""
    if copies < 0:
        raise ValueError(f"copies={copies} must be >= 0")
    count, height, width = images.shape
    generator = torch.Generator().manual_seed(seed)
    total = copies * count
    angle = (torch.rand(total, generator=generator) * 2 - 1) * math.radians(max_degrees)
    scale = 1 + (torch.rand(total, generator=generator) * 2 - 1) * max_scale
    shift = (torch.rand(total, 2, generator=generator) * 2 - 1) * max_shift
    # the inverse map (output -> input): rotate by -angle and divide by scale; a shift of s pixels
    # is 2 s / size in normalised coordinates, subtracted because the grid reads the input
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, sin, -2 * shift[:, 0] / width], dim=1),
            torch.stack([-sin, cos, -2 * shift[:, 1] / height], dim=1),
        ],
        dim=1,
    )
    source = images.repeat(copies, 1, 1)
    parts = [affine_images(source[i : i + chunk], theta[i : i + chunk]) for i in range(0, total, chunk)]
    return torch.cat(parts) if parts else images.new_empty((0, height, width))
