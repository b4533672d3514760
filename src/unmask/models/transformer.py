"""A bidirectional transformer denoiser with a partial-forward path (docs/THEORY.md section 5).

Pre-LayerNorm blocks with ``scaled_dot_product_attention``; learned or rotary positions; optional
class conditioning (``cond`` = class ids ``[B]``; id ``num_classes`` is the null class) and
optional time conditioning, where the time of a row is its fraction of masked positions (so the
sampler never has to pass a time); optional residual dropout (``dropout``: each block's attention and
MLP outputs are dropped at that rate before they join the residual stream, in training mode only, so
an eval-mode network, which is what every sampler gets, computes the same function at any rate).
It implements both contracts:

- ``__call__(tokens, cond)`` / ``encode(tokens, cond)``: the full forward; ``encode`` also returns
  a ``KVCache`` with every layer's keys and values for all positions;
- ``refresh(tokens, rows, cache, cond)``: recomputes only the ``[B, q]`` positions ``rows``:
  their embeddings, and at every layer their queries, keys and values from the current inputs;
  they attend to the cached keys/values of every other position. The recomputed keys/values are
  written into the cache, so a later refresh sees them. Cost: about ``q / L`` of a full forward
  (projections and MLP on q rows, attention q x L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class KVCache:
    """Per-layer keys and values ``[B, heads, L, head_dim]`` of one encoded batch."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def batch_size(self) -> int:
        return self.keys[0].shape[0]

    @property
    def length(self) -> int:
        return self.keys[0].shape[2]


def rotary_tables(length: int, head_dim: int, base: float = 10_000.0) -> tuple[torch.Tensor, torch.Tensor]:
    half = head_dim // 2
    freqs = base ** (-torch.arange(half, dtype=torch.float32) / half)
    angles = torch.arange(length, dtype=torch.float32)[:, None] * freqs[None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``[B, H, n, d]`` by per-position angles ``cos``/``sin`` ``[B, 1, n, d/2]``."""
    first, second = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        self.dropout = nn.Dropout(dropout)  # no parameters: the state dict is the same for any rate

    def project(self, h: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None):
        """Queries, keys, values ``[B, heads, n, head_dim]`` of hidden states ``h`` ``[B, n, W]``."""
        batch, n, width = h.shape
        q, k, v = (
            self.qkv(self.ln1(h)).view(batch, n, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        )
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        return q, k, v

    def finish(self, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        batch, _, n, _ = attended.shape
        h = h + self.dropout(self.proj(attended.transpose(1, 2).reshape(batch, n, -1)))
        return h + self.dropout(self.mlp(self.ln2(h)))


class MaskedTransformer(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        width: int = 256,
        depth: int = 6,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        positions: str = "learned",
        num_classes: int = 0,
        time_conditioning: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        for name, value in (
            ("vocab_size", vocab_size),
            ("seq_len", seq_len),
            ("width", width),
            ("depth", depth),
        ):
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        if width % heads or (width // heads) % 2:
            raise ValueError(f"width={width} must be a multiple of 2 * heads (heads={heads})")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        if positions not in ("learned", "rotary"):
            raise ValueError(f"positions={positions!r} must be 'learned' or 'rotary'")
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.num_classes, self.time_conditioning, self.positions = num_classes, time_conditioning, positions
        self.token_embedding = nn.Embedding(vocab_size + 1, width)  # + the mask id
        if positions == "learned":
            self.position_embedding = nn.Parameter(torch.randn(seq_len, width) * 0.02)
        else:
            cos, sin = rotary_tables(seq_len, width // heads)
            self.register_buffer("rotary_cos", cos, persistent=False)
            self.register_buffer("rotary_sin", sin, persistent=False)
        self.class_embedding = nn.Embedding(num_classes + 1, width) if num_classes > 0 else None
        self.time_mlp = (
            nn.Sequential(nn.Linear(64, width), nn.SiLU(), nn.Linear(width, width))
            if time_conditioning
            else None
        )
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, dropout) for _ in range(depth))
        self.ln_out = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # ---- pieces shared by the full and the partial forward ----------------------------------
    def _check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 2 or tokens.shape[1] != self.seq_len:
            raise ValueError(f"tokens must be [B, {self.seq_len}], got {tuple(tokens.shape)}")

    def _conditioning(self, tokens: torch.Tensor, cond: Any | None) -> torch.Tensor | None:
        """``[B, 1, W]`` added to every position: class embedding and/or time embedding."""
        extra = None
        if self.class_embedding is not None:
            labels = torch.full((tokens.shape[0],), self.num_classes, device=tokens.device)
            if cond is not None:
                labels = torch.as_tensor(cond, device=tokens.device).long().view(-1)
            extra = self.class_embedding(labels)[:, None]
        elif cond is not None:
            raise ValueError("cond was given but the model has no class conditioning (num_classes=0)")
        if self.time_mlp is not None:
            t = (tokens == self.vocab_size).float().mean(dim=1, keepdim=True)  # masked fraction
            freqs = torch.exp(-math.log(1000.0) * torch.arange(32, device=tokens.device) / 32)
            angles = t * 1000.0 * freqs[None]
            time = self.time_mlp(torch.cat([angles.sin(), angles.cos()], dim=1))[:, None]
            extra = time if extra is None else extra + time
        return extra

    def _embed(
        self, tokens: torch.Tensor, positions: torch.Tensor, extra: torch.Tensor | None
    ) -> torch.Tensor:
        """Hidden states of the tokens at ``positions`` ``[B, n]``."""
        h = self.token_embedding(tokens.gather(1, positions))
        if self.positions == "learned":
            h = h + self.position_embedding[positions]
        return h if extra is None else h + extra

    def _rotary(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.positions != "rotary":
            return None
        return self.rotary_cos[positions][:, None], self.rotary_sin[positions][:, None]

    # ---- the contracts -------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor, cond: Any | None = None) -> tuple[torch.Tensor, KVCache]:
        """Full forward: logits ``[B, L, V]`` and every layer's keys/values."""
        self._check_tokens(tokens)
        positions = torch.arange(self.seq_len, device=tokens.device).expand(tokens.shape[0], -1)
        rotary = self._rotary(positions)
        h = self._embed(tokens, positions, self._conditioning(tokens, cond))
        cache = KVCache([], [])
        for block in self.blocks:
            q, k, v = block.project(h, rotary)
            cache.keys.append(k)
            cache.values.append(v)
            h = block.finish(h, F.scaled_dot_product_attention(q, k, v))
        return self.head(self.ln_out(h)), cache

    def forward(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        return self.encode(tokens, cond)[0]

    def refresh(
        self, tokens: torch.Tensor, rows: torch.Tensor, cache: KVCache, cond: Any | None = None
    ) -> torch.Tensor:
        """Logits ``[B, q, V]`` at ``rows`` ``[B, q]``, recomputing only those rows (see module doc)."""
        self._check_tokens(tokens)
        if rows.dim() != 2 or rows.shape[0] != tokens.shape[0]:
            raise ValueError(f"rows must be [B, q] with B = {tokens.shape[0]}, got {tuple(rows.shape)}")
        if (
            cache.batch_size != tokens.shape[0]
            or cache.length != self.seq_len
            or len(cache.keys) != len(self.blocks)
        ):
            raise ValueError(
                f"cache is for batch {cache.batch_size}, length {cache.length}, {len(cache.keys)} "
                f"layers; tokens are batch {tokens.shape[0]}, length {self.seq_len}, model has "
                f"{len(self.blocks)} layers"
            )
        rotary = self._rotary(rows)
        h = self._embed(tokens, rows, self._conditioning(tokens, cond))
        for block, keys, values in zip(self.blocks, cache.keys, cache.values, strict=True):
            q, k, v = block.project(h, rotary)
            index = rows[:, None, :, None].expand(-1, keys.shape[1], -1, keys.shape[3])
            keys.scatter_(2, index, k)
            values.scatter_(2, index, v)
            h = block.finish(h, F.scaled_dot_product_attention(q, keys, values))
        return self.head(self.ln_out(h))
