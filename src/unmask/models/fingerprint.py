"""Fingerprints of user checkpoints: the sha256 that binds a run to the weights it sampled from.

A large checkpoint is hashed once per file version: ``cached_sha256`` remembers each file's digest
by (absolute path, size, mtime_ns), so a rerun reads the digest instead of the file."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from unmask.io import sha256_of, write_json_atomic


def _fingerprint_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "unmask" / "fingerprints.json"


def cached_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a (large) file, remembered by (absolute path, size, mtime_ns) in
    ``~/.cache/unmask/fingerprints.json`` (``$XDG_CACHE_HOME`` if set) so that a checkpoint is
    hashed once; the cache is best effort (unreadable or unwritable: hash again)."""
    path = Path(path).resolve()
    stat = path.stat()
    cache_path = _fingerprint_cache()
    try:
        cache = json.loads(cache_path.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(str(path))
    if (
        isinstance(entry, dict)
        and entry.get("size") == stat.st_size
        and entry.get("mtime_ns") == stat.st_mtime_ns
        and isinstance(entry.get("sha256"), str)
    ):
        return entry["sha256"]
    digest = sha256_of(path)
    cache[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    with contextlib.suppress(OSError):  # a cache that cannot be written: hashed again next time
        write_json_atomic(cache_path, cache)
    return digest
