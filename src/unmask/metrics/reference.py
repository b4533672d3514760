"""Reference statistics of the ``fid`` metric from a file: ``dataset.reference=<path>``.

The path is one of:

- an ``.npz`` with ``mu`` ``[d]`` and ``sigma`` ``[d, d]`` (pytorch-fid, guided-diffusion / ADM
  files such as ``VIRTUAL_imagenet256_labeled.npz``, which also hold images: the statistics are
  used as they are, so they must come from the same Inception and preprocessing to be comparable);
- an ``.npz`` with only images ``arr_0`` (uint8 ``[N, H, W, C]``, ``[N, C, H, W]`` or ``[N, H, W]``,
  ``C`` = 1 or 3);
- a folder of PNG / JPEG images (read with Pillow as RGB, in name order).

Statistics of images are computed once with the feature network and cached under the data
directory (``unmask.metrics.fid.reference_statistics``), keyed by the data's sha256 (a folder's:
of its files' names and sha256s) and the network's. ``check_reference`` runs before any sampling
(``MetricSuite.check_data``) and reads only the ``.npz`` headers; each problem is one line naming
the path and the key, e.g. ``dataset.reference=<path>: sigma has shape (64, 64); the Inception
features are 2048-d``.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ReferenceError(ValueError):
    """A reference file that cannot give FID statistics; one line naming it and the key."""


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of the arrays of an ``.npz``, from their headers (no data read)."""
    out = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith(".npy"):
                continue
            with archive.open(name) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            out[name.removesuffix(".npy")] = (tuple(shape), dtype)
    return out


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_layout(shape: tuple[int, ...]) -> str | None:
    """``NHWC``, ``NCHW`` or ``NHW`` for an image array of ``shape`` (channels 1 or 3), else None."""
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4 and shape[-1] in (1, 3):
        return "NHWC"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "NCHW"
    return None


def check_reference(path: str, dim: int) -> None:
    """``ReferenceError`` (one line: ``dataset.reference=<path>: ...``) unless ``path`` gives
    statistics of ``dim``-d features (module docstring)."""
    where = f"dataset.reference={path}"
    file = Path(path).expanduser()
    if file.is_dir():
        if len(image_files(file)) < 2:
            kinds = ", ".join(IMAGE_SUFFIXES)
            raise ReferenceError(f"{where}: a folder, but with fewer than 2 images ({kinds})")
        return
    if not file.is_file():
        raise ReferenceError(f"{where}: no such file or folder")
    try:
        headers = npz_headers(file)
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ReferenceError(f"{where}: not a readable .npz ({err})") from None
    if "mu" in headers and "sigma" in headers:
        for key, want in (("mu", (dim,)), ("sigma", (dim, dim))):
            shape, dtype = headers[key]
            if shape != want:
                raise ReferenceError(f"{where}: {key} has shape {shape}; the Inception features are {dim}-d")
            if dtype.kind != "f":
                raise ReferenceError(f"{where}: {key} has dtype {dtype}; it must be floating point")
        return
    if "arr_0" in headers:
        shape, dtype = headers["arr_0"]
        if dtype != np.uint8 or image_layout(shape) is None or shape[0] < 2:
            raise ReferenceError(
                f"{where}: arr_0 has shape {shape} and dtype {dtype}; images must be uint8 [N, H, W, C], "
                "[N, C, H, W] or [N, H, W] with C = 1 or 3 and N >= 2"
            )
        return
    raise ReferenceError(
        f"{where}: holds neither mu and sigma nor images arr_0 (keys: {', '.join(sorted(headers)) or 'none'})"
    )


def array_images(array: np.ndarray, batch: int) -> Iterator[torch.Tensor]:
    """Float ``[b, C, H, W]`` (or ``[b, H, W]``) images in [0, 1] from a uint8 image array."""
    layout = image_layout(array.shape)
    for start in range(0, array.shape[0], batch):
        part = torch.from_numpy(np.ascontiguousarray(array[start : start + batch])).float() / 255
        yield part.permute(0, 3, 1, 2) if layout == "NHWC" else part


def folder_images(files: list[Path]) -> Iterator[torch.Tensor]:
    """Each image file as a float ``[1, 3, H, W]`` in [0, 1] (sizes may differ)."""
    from PIL import Image

    for file in files:
        with Image.open(file) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        yield torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255


def folder_digest(files: list[Path]) -> str:
    """sha256 over the names and sha256s of a folder's image files."""
    from unmask.io import sha256_of

    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{sha256_of(file)}\n".encode())
    return digest.hexdigest()
