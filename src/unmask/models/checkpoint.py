"""Checkpoints: safetensors weights + a JSON card, loaded by name or path with checks first.

A checkpoint ``NAME`` is ``NAME.safetensors`` + ``NAME.json`` (the card: kind, model config,
tokenizer, data hash, training recipe, validation metrics, git sha, sha256 and size of the weights).
Names resolve in ``src/unmask/checkpoints/`` (shipped with the package). Before any compute,
``load_card`` checks the card against ``CARD_KEYS``: one JSON object (no key twice), every key known,
the required ones present, each value of its type and range, the ``config`` against its kind's
``CONFIG_KEYS``, the ``tokenizer`` against ``TOKENIZER_KEYS``; ``load_model`` then checks that the
weights exist, have the card's size and sha256, and hold the tensors (names and shapes) of the
config. Each failure is one ``CheckpointError`` naming the file and the key. ``save_checkpoint``
applies the same checks to the card it writes, so what is saved loads.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from unmask.checks import is_integer, is_number
from unmask.io import sha256_of
from unmask.models.classifier import MNISTClassifier
from unmask.models.transformer import MaskedTransformer
from unmask.models.vq import VQAutoencoder

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
KINDS = {"denoiser": MaskedTransformer, "vq": VQAutoencoder, "classifier": MNISTClassifier}


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match what it is used with."""


# A check returns what is wrong with a value ("must be ..."), or None.
Check = Callable[[Any], "str | None"]


def integer(minimum: int) -> Check:
    return lambda v: None if is_integer(v) and v >= minimum else f"must be an integer >= {minimum}"


def number(minimum: float, *, strict: bool) -> Check:
    def check(v: Any) -> str | None:
        fine = is_number(v) and math.isfinite(v) and (v > minimum if strict else v >= minimum)
        return None if fine else f"must be a number {'>' if strict else '>='} {minimum}"

    return check


def rate(v: Any) -> str | None:
    fine = is_number(v) and math.isfinite(v) and 0 <= v < 1
    return None if fine else "must be a number in [0, 1)"


def one_of(*choices: str) -> Check:
    return lambda v: None if isinstance(v, str) and v in choices else f"must be one of {', '.join(choices)}"


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def text(v: Any) -> str | None:
    return None if isinstance(v, str) and v else "must be a non-empty string"


def character(v: Any) -> str | None:
    return None if isinstance(v, str) and len(v) == 1 else "must be one character"


def sha256(v: Any) -> str | None:
    fine = isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)
    return None if fine else "must be a sha256 (64 lowercase hex digits)"


def json_object(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be a JSON object"


def grid(v: Any) -> str | None:
    fine = isinstance(v, list) and len(v) == 2 and all(is_integer(n) and n >= 1 for n in v)
    return None if fine else "must be a list of 2 integers >= 1"


# Every key a card may hold: (check, required). ``training`` is the recipe as a record (free-form,
# never read back); the sections named in the comments are checked key by key below.
CARD_KEYS: dict[str, tuple[Check, bool]] = {
    "kind": (one_of(*sorted(KINDS)), True),
    "config": (json_object, True),  # CONFIG_KEYS[kind]
    "weights_sha256": (sha256, True),
    "weights_bytes": (integer(0), False),
    "name": (text, False),
    "tokenizer": (json_object, False),  # TOKENIZER_KEYS[type]
    "grid": (grid, False),
    "data": (json_object, False),  # DATA_KEYS
    "training": (json_object, False),
    "metrics": (json_object, False),  # name -> number
    "git_sha": (text, False),
    "torch": (text, False),
}
# The constructor parameters of each kind (those without a default required).
CONFIG_KEYS: dict[str, dict[str, tuple[Check, bool]]] = {
    "denoiser": {
        "vocab_size": (integer(1), True),
        "seq_len": (integer(1), True),
        "width": (integer(1), False),
        "depth": (integer(1), False),
        "heads": (integer(1), False),
        "mlp_ratio": (number(0, strict=True), False),
        "positions": (one_of("learned", "rotary"), False),
        "num_classes": (integer(0), False),
        "time_conditioning": (boolean, False),
        "dropout": (rate, False),
    },
    "vq": {
        "codebook_size": (integer(2), False),
        "code_dim": (integer(1), False),
        "hidden": (integer(2), False),
        "commitment": (number(0, strict=False), False),
    },
    "classifier": {"features": (integer(1), False)},
}
TOKENIZER_KEYS: dict[str, dict[str, tuple[Check, bool]]] = {
    "vq": {"type": (text, True), "checkpoint": (text, True), "sha256": (sha256, True)},
    "char": {"type": (text, True), "alphabet": (text, True), "unknown": (character, False)},
}
DATA_KEYS: dict[str, tuple[Check, bool]] = {"asset": (text, True), "sha256": (sha256, True)}


def check_keys(where: str, node: dict[str, Any], spec: dict[str, tuple[Check, bool]]) -> str | None:
    """What is wrong with ``node`` under ``spec`` (an unknown key, a missing one, a bad value), the
    keys named ``<where>.<key>``; None if nothing."""
    prefix = f"{where}." if where else ""
    for key in node:
        if key not in spec:
            return f"{prefix}{key}: unknown key; allowed: {', '.join(spec)}"
    for key, (check, required) in spec.items():
        if key not in node:
            if required:
                return f"{prefix}{key}: missing"
            continue
        problem = check(node[key])
        if problem:
            return f"{prefix}{key}={node[key]!r} {problem}"
    return None


def card_problem(card: Any) -> str | None:
    """What is wrong with a parsed card (see ``CARD_KEYS``), or None."""
    if not isinstance(card, dict):
        found = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(card))
        return f"must be a JSON object, not {found or 'a number'}"
    problem = check_keys("", card, CARD_KEYS)
    if problem:
        return problem
    problem = check_keys("config", card["config"], CONFIG_KEYS[card["kind"]])
    if problem:
        return problem
    if "tokenizer" in card:
        tokenizer = card["tokenizer"]
        kind = tokenizer.get("type")
        if "type" not in tokenizer:
            return "tokenizer.type: missing"
        if not isinstance(kind, str) or kind not in TOKENIZER_KEYS:
            return f"tokenizer.type={kind!r} must be one of {', '.join(sorted(TOKENIZER_KEYS))}"
        problem = check_keys("tokenizer", tokenizer, TOKENIZER_KEYS[kind])
        if problem:
            return problem
    if "data" in card:
        problem = check_keys("data", card["data"], DATA_KEYS)
        if problem:
            return problem
    for key, value in card.get("metrics", {}).items():
        if not is_number(value):
            return f"metrics.{key}={value!r} must be a number"
    if "grid" in card and "seq_len" in card["config"]:
        cells, length = math.prod(card["grid"]), card["config"]["seq_len"]
        if cells != length:
            return f"grid={card['grid']} has {cells} cells, but config.seq_len={length}"
    return None


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


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


def load_card(name_or_path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """The checked card of a checkpoint (``CARD_KEYS``); with ``kind``, a card of another kind is
    refused before its config is read."""
    _, card_path = resolve(name_or_path)
    if not card_path.exists():
        raise CheckpointError(f"checkpoint card {card_path} does not exist")
    try:
        card = json.loads(card_path.read_bytes().decode("utf-8"), object_pairs_hook=_unique_keys)
    except _DuplicateKeyError as err:
        raise CheckpointError(f"checkpoint card {card_path}: key {err.args[0]!r} appears twice") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint card {card_path} is not valid JSON: {err}") from None
    found = card.get("kind") if isinstance(card, dict) else None
    if kind is not None and isinstance(found, str) and found in KINDS and found != kind:
        raise CheckpointError(f"checkpoint card {card_path} is a {found!r}, not a {kind}")
    problem = card_problem(card)
    if problem:
        raise CheckpointError(f"checkpoint card {card_path}: {problem}")
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
    problem = card_problem(card)
    if problem:
        tmp_weights.unlink()
        raise CheckpointError(f"checkpoint card for {stem}: {problem}; nothing was written")
    tmp_card = stem.with_name(stem.name + ".json.tmp")
    tmp_card.write_text(json.dumps(card, indent=2))
    os.replace(tmp_weights, weights)
    os.replace(tmp_card, stem.with_suffix(".json"))
    return weights


def add_card_metrics(name_or_path: str | os.PathLike, metrics: dict[str, float], weights_sha256: str) -> Path:
    """Merge ``metrics`` into a checkpoint's card (replacing those of the same name), atomically; the
    weights are not touched. ``weights_sha256`` is the hash of the weights the metrics were measured on:
    a card that no longer describes them (the checkpoint was replaced meanwhile) is refused."""
    _, card_path = resolve(name_or_path)
    card = load_card(name_or_path)
    if card["weights_sha256"] != weights_sha256:
        raise CheckpointError(
            f"checkpoint card {card_path} now describes weights {card['weights_sha256']}, not the "
            f"{weights_sha256} that were scored; nothing was written"
        )
    card = dict(card, metrics={**card.get("metrics", {}), **metrics})
    problem = card_problem(card)
    if problem:
        raise CheckpointError(f"checkpoint card {card_path}: {problem}; nothing was written")
    tmp_card = card_path.with_name(card_path.name + f".tmp{os.getpid()}")
    tmp_card.write_text(json.dumps(card, indent=2))
    os.replace(tmp_card, card_path)
    return card_path


def load_model(
    name_or_path: str | os.PathLike, device: str | torch.device = "cpu", kind: str | None = None
) -> nn.Module:
    """The model of a checkpoint in eval mode, after checking card, size, hash, names and shapes
    (``kind``: the kind it must be)."""
    weights, card_path = resolve(name_or_path)
    card = load_card(name_or_path, kind)
    if not weights.exists():
        raise CheckpointError(f"checkpoint weights {weights} do not exist (card {card_path})")
    size = weights.stat().st_size
    if "weights_bytes" in card and size != card["weights_bytes"]:
        raise CheckpointError(
            f"{weights} has {size} bytes, but its card {card_path} says weights_bytes={card['weights_bytes']}"
            " (truncated or replaced?)"
        )
    digest = sha256_of(weights)
    if digest != card["weights_sha256"]:
        raise CheckpointError(
            f"{weights}: sha256 {digest} does not match its card {card_path} "
            f"(weights_sha256={card['weights_sha256']})"
        )
    try:
        model = KINDS[card["kind"]](**card["config"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint card {card_path}: config: {err}") from None
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
