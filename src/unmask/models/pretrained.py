"""Ready-to-sample denoisers from shipped (or user) checkpoints: ``load_denoiser(name)``.

- an image-token checkpoint (card ``tokenizer.type == "vq"``) gives an ``ImageTokenDenoiser``:
  the transformer over VQ codes plus ``decode(tokens) -> images [B, 28, 28]`` and its ``grid``;
- a character checkpoint (``tokenizer.type == "char"``) gives a ``TextDenoiser`` with
  ``decode(tokens) -> list[str]`` and ``encode(text)``.
Both are ``Denoiser`` and ``PartialDenoiser`` (they forward ``encode``/``refresh``) and run
under ``torch.no_grad``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from unmask.data.shakespeare import CharTokenizer
from unmask.models.checkpoint import CheckpointError, load_card, load_model, resolve


class _Wrapped:
    def __init__(self, net: torch.nn.Module, card: dict[str, Any]):
        self.net, self.card = net, card
        self.vocab_size, self.seq_len = net.vocab_size, net.seq_len
        self.num_classes = getattr(net, "num_classes", 0)  # class-conditional: null label = num_classes

    @property
    def device(self) -> torch.device:
        return self.net.device

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What identifies the network beyond its config: the sha256 of its weights (checked
        against the card when loaded) and of its tokenizer's; part of a run's resume key."""
        return {
            "weights": self.card["weights_sha256"],
            "tokenizer": (self.card.get("tokenizer") or {}).get("sha256"),
        }

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        return self.net(tokens, cond)

    @torch.no_grad()
    def encode(self, tokens: torch.Tensor, cond: Any | None = None):
        return self.net.encode(tokens, cond)

    @torch.no_grad()
    def refresh(self, tokens: torch.Tensor, rows: torch.Tensor, cache: Any, cond: Any | None = None):
        return self.net.refresh(tokens, rows, cache, cond)


class ImageTokenDenoiser(_Wrapped):
    def __init__(self, net, card, vq):
        super().__init__(net, card)
        self.vq = vq
        self.grid = tuple(card.get("grid", (7, 7)))

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.vq.decode(tokens.to(self.vq.codebook.weight.device))


class TextDenoiser(_Wrapped):
    def __init__(self, net, card, tokenizer: CharTokenizer):
        super().__init__(net, card)
        self.tokenizer = tokenizer

    def decode(self, tokens: torch.Tensor) -> list[str]:
        return [self.tokenizer.decode(row) for row in tokens.cpu()]

    def encode_text(self, text: str) -> torch.Tensor:
        return self.tokenizer.encode(text)


def load_denoiser(name: str | os.PathLike, device: str = "cpu"):
    """A ready ``Denoiser`` for checkpoint ``name`` (shipped name or path). Its card must be a
    denoiser's with a tokenizer; a VQ tokenizer must be the checkpoint it names, with the sha256
    the card records (compared before the tokenizer's weights are read)."""
    _, card_path = resolve(name)
    card = load_card(name, kind="denoiser")
    if "tokenizer" not in card:
        raise CheckpointError(
            f"checkpoint card {card_path}: tokenizer: missing (a denoiser needs one to decode)"
        )
    tokenizer = card["tokenizer"]
    if tokenizer["type"] == "vq":
        if load_card(tokenizer["checkpoint"], kind="vq")["weights_sha256"] != tokenizer["sha256"]:
            raise CheckpointError(
                f"checkpoint {name!r} was trained with a different {tokenizer['checkpoint']!r} "
                f"(tokenizer.sha256 in {card_path})"
            )
        net, vq = (
            load_model(name, device, kind="denoiser"),
            load_model(tokenizer["checkpoint"], device, kind="vq"),
        )
        if vq.codebook_size != net.vocab_size:
            raise CheckpointError(
                f"checkpoint card {card_path}: config.vocab_size={net.vocab_size}, but tokenizer "
                f"{tokenizer['checkpoint']!r} has {vq.codebook_size} codes"
            )
        return ImageTokenDenoiser(net, card, vq)
    try:
        chars = CharTokenizer(tokenizer["alphabet"], tokenizer.get("unknown", "?"))
    except ValueError as err:
        raise CheckpointError(f"checkpoint card {card_path}: tokenizer: {err}") from None
    net = load_model(name, device, kind="denoiser")
    if chars.vocab_size != net.vocab_size:
        raise CheckpointError(
            f"checkpoint card {card_path}: config.vocab_size={net.vocab_size}, but tokenizer.alphabet has "
            f"{chars.vocab_size} characters"
        )
    return TextDenoiser(net, card, chars)
