"""Checkpoints: safetensors weights + a JSON card, loaded by name or path with checks first.

A checkpoint ``NAME`` is ``NAME.safetensors`` + ``NAME.json`` (the card: kind, model config,
tokenizer, data hash, training recipe, validation metrics, git sha, sha256 of the weights).
Names resolve in ``src/unmask/checkpoints/`` (shipped with the package). Before any compute,
``load_model`` checks that both files exist, that the weights' sha256 matches the card, and
that the tensor names and shapes match the config; each failure names the file and the mismatch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from unmask.io import sha256_of
from unmask.models.classifier import MNISTClassifier
from unmask.models.transformer import MaskedTransformer
from unmask.models.vq import VQAutoencoder

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
KINDS = {"denoiser": MaskedTransformer, "vq": VQAutoencoder, "classifier": MNISTClassifier}


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match what it is used with."""


def available() -> list[str]:
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.json"))


def resolve(name_or_path: str | os.PathLike) -> tuple[Path, Path]:
    """``(weights, card)`` paths for a shipped name, a ``.safetensors``/``.json`` path or a stem."""
    text = str(name_or_path)
    if os.sep not in text and not text.endswith((".json", ".safetensors")):
        stem = CHECKPOINT_DIR / text
        if not stem.with_suffix(".json").exists():
            raise CheckpointError(
                f"unknown checkpoint {text!r}; shipped: {', '.join(available()) or 'none'} "
                f"(in {CHECKPOINT_DIR}); or pass a path"
            )
    else:
        path = Path(text)
        stem = path.with_suffix("") if path.suffix in (".json", ".safetensors") else path
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def load_card(name_or_path: str | os.PathLike) -> dict[str, Any]:
    _, card_path = resolve(name_or_path)
    if not card_path.exists():
        raise CheckpointError(f"checkpoint card {card_path} does not exist")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint card {card_path} is not valid JSON: {err}") from None
    for key in ("kind", "config", "weights_sha256"):
        if key not in card:
            raise CheckpointError(f"checkpoint card {card_path} has no {key!r}")
    if card["kind"] not in KINDS:
        raise CheckpointError(
            f"checkpoint card {card_path}: kind {card['kind']!r} is not one of {sorted(KINDS)}"
        )
    return card


def save_checkpoint(model: nn.Module, card: dict[str, Any], stem: str | os.PathLike) -> Path:
    """Write ``stem.safetensors`` and ``stem.json`` atomically; the card gets the weights' hash."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_suffix(".safetensors")
    tmp_weights = stem.with_name(stem.name + ".safetensors.tmp")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_weights))
    card = dict(card, weights_sha256=sha256_of(tmp_weights), weights_bytes=tmp_weights.stat().st_size)
    tmp_card = stem.with_name(stem.name + ".json.tmp")
    tmp_card.write_text(json.dumps(card, indent=2))
    os.replace(tmp_weights, weights)
    os.replace(tmp_card, stem.with_suffix(".json"))
    return weights


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The model of a checkpoint in eval mode, after checking hash, names and shapes."""
    weights, card_path = resolve(name_or_path)
    card = load_card(name_or_path)
    if not weights.exists():
        raise CheckpointError(f"checkpoint weights {weights} do not exist (card {card_path})")
    digest = sha256_of(weights)
    if digest != card["weights_sha256"]:
        raise CheckpointError(
            f"{weights}: sha256 {digest} does not match its card ({card['weights_sha256']})"
        )
    try:
        model = KINDS[card["kind"]](**card["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint card {card_path}: bad config ({err})") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {err}") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))[:4]
        raise CheckpointError(f"{weights}: tensors do not match the config in {card_path}: {diff}")
    model.load_state_dict(state)
    return model.to(device).eval()
