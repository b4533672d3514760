"""Small I/O helpers: atomic JSON writes, file hashes, the git revision of the code."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path``, flushed to disk."""
    with open(path, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as JSON to ``path`` via a temporary file in the same folder + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write_json(tmp, payload)
    os.replace(tmp, path)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar(path: Path) -> Path:
    """The sha256 record of a derived file: ``<name>.sha256`` next to it."""
    return Path(path).with_name(Path(path).name + ".sha256")


def seal(path: Path) -> None:
    """Record the sha256 of a derived file just written (its sidecar, atomically)."""
    tmp = sidecar(path).with_name(sidecar(path).name + f".tmp{os.getpid()}")
    tmp.write_text(sha256_of(path) + "\n")
    os.replace(tmp, sidecar(path))


def replace_sealed(tmp: Path, path: Path) -> None:
    """Move a derived file just written to ``tmp`` into place at ``path``, with its sha256 record
    (the record first: between the two renames a reader finds a mismatch and recomputes)."""
    seal(tmp)
    os.replace(sidecar(tmp), sidecar(path))
    os.replace(tmp, path)


def sealed(path: Path) -> bool:
    """Whether a derived file exists and still has the sha256 recorded when it was written
    (a file altered, torn or written without a record is not trusted: recompute it)."""
    path = Path(path)
    if not path.exists() or not sidecar(path).exists():
        return False
    return sidecar(path).read_text().strip() == sha256_of(path)


def git_sha(cwd: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the repository holding this package, or ``unknown``."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=cwd or Path(__file__).parent
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def save_image_grid(images: Any, path: Path, columns: int = 8, pad: int = 1) -> None:
    """Images ``[B, H, W]`` (grey) or ``[B, C, H, W]`` (C = 1 or 3) with values in [0, 1], as one
    PNG grid of ``columns`` per row, ``pad`` white pixels apart; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    images = torch.as_tensor(images, dtype=torch.float32).cpu()
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images of shape {list(images.shape)}: expected [B, H, W] or [B, C, H, W], C = 1 or 3"
        )
    count, channels, height, width = images.shape
    rows = -(-count // columns)
    grid = torch.ones(channels, rows * (height + pad) - pad, min(count, columns) * (width + pad) - pad)
    for i, image in enumerate(images.clamp(0, 1)):
        r, c = divmod(i, columns)
        grid[
            :, r * (height + pad) : r * (height + pad) + height, c * (width + pad) : c * (width + pad) + width
        ] = image
    picture = grid[0].numpy() if channels == 1 else grid.permute(1, 2, 0).numpy()
    tmp = Path(path).with_name(Path(path).stem + ".tmp.png")
    plt.imsave(tmp, picture, cmap="gray" if channels == 1 else None, vmin=0, vmax=1)
    os.replace(tmp, path)
