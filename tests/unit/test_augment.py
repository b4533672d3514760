"""``unmask.data.augment``: exact resampling laws for known maps, and what the random copies keep."""

import math

import pytest
import torch

from unmask.data.augment import affine_images, random_affine_copies


def digits(count: int = 6, seed: int = 0) -> torch.Tensor:
    """Blocky test images: a random 10 x 10 patch of values in the middle of a 28 x 28 zero frame."""
    images = torch.zeros(count, 28, 28, dtype=torch.uint8)
    patch = torch.randint(0, 256, (count, 10, 10), generator=torch.Generator().manual_seed(seed))
    images[:, 9:19, 9:19] = patch.to(torch.uint8)
    return images


def test_the_identity_map_returns_every_pixel():
    images = digits()
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(len(images), 2, 3)
    assert torch.equal(affine_images(images, theta), images)


@pytest.mark.parametrize(("dx", "dy"), [(1, 0), (0, -2), (3, 1)])
def test_a_whole_pixel_shift_is_the_sliced_image(dx, dy):
    """A translation by whole pixels moves the content by exactly that many columns and rows (the
    law computed by slicing, zeros where nothing moves in)."""
    images = digits()
    theta = torch.tensor([[1.0, 0, -2 * dx / 28], [0, 1.0, -2 * dy / 28]]).expand(len(images), 2, 3)
    expected = torch.zeros_like(images)
    rows, cols = slice(max(dy, 0), 28 + min(dy, 0)), slice(max(dx, 0), 28 + min(dx, 0))
    source_rows, source_cols = slice(max(-dy, 0), 28 - max(dy, 0)), slice(max(-dx, 0), 28 - max(dx, 0))
    expected[:, rows, cols] = images[:, source_rows, source_cols]
    assert torch.equal(affine_images(images, theta), expected)


def test_a_quarter_turn_is_the_rotated_image():
    images = digits()
    c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    theta = torch.tensor([[c, s, 0], [-s, c, 0]]).expand(len(images), 2, 3)
    turned = affine_images(images, theta)
    assert any(torch.equal(turned, torch.rot90(images, k, dims=(1, 2))) for k in (1, 3))


def test_copies_are_seeded_small_moves_of_their_own_image():
    """Shape, dtype and order (copy c of image i is row c * N + i); the same seed gives the same copies,
    another seed others; each copy keeps its image's ink within 25% (scale at most 10% each way: area
    0.81-1.21, plus rounding) and its centre of mass within 1.5 pixels of it (shift at most 1 px per axis; the
    patch is centred, so rotation and scale about the centre barely move it)."""
    images = digits(count=8)
    copies = random_affine_copies(images, 3, seed=4)
    assert copies.shape == (24, 28, 28) and copies.dtype == torch.uint8
    assert torch.equal(copies, random_affine_copies(images, 3, seed=4))
    assert not torch.equal(copies, random_affine_copies(images, 3, seed=5))
    assert not any(torch.equal(copies[c * 8 + i], images[i]) for c in range(3) for i in range(8))
    grid = torch.arange(28.0)

    def ink_and_centre(x):
        mass = x.float().sum(dim=(1, 2))
        centre = torch.stack([(x.float().sum(2) * grid).sum(1), (x.float().sum(1) * grid).sum(1)], 1)
        return mass, centre / mass[:, None]

    mass, centre = ink_and_centre(images.repeat(3, 1, 1))
    copy_mass, copy_centre = ink_and_centre(copies)
    assert ((copy_mass / mass - 1).abs() < 0.25).all()
    assert ((copy_centre - centre).norm(dim=1) < 1.5).all()
    assert random_affine_copies(images, 0, seed=0).shape == (0, 28, 28)
    with pytest.raises(ValueError, match="copies=-1 must be >= 0"):
        random_affine_copies(images, -1, seed=0)
