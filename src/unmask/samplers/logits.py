"""Options every sampler has that change the logits before any rule sees them.

- **Classifier-free guidance** (Ho & Salimans 2022; LLaDA's form for masked diffusion, Nie et
  al. 2025) for a class-conditional denoiser. Protocol: the denoiser has ``num_classes >= 1``;
  ``cond`` is a long tensor ``[B]`` of class ids; id ``num_classes`` is the null (unconditional)
  label. With scale ``s`` the logits a sampler sees are
  ``z = z_c + s * (z_c - z_u)``,
  ``z_c`` the logits given the class and ``z_u`` given the null label (both from one call on the
  doubled batch, which counts as 2 in ``nfe`` and ``cost``). ``s = 0`` is the conditional model
  itself: no unconditional call is made, so the law is exactly the conditional one; ``s > 0``
  sharpens towards the class. ``cfg_ramp = "linear"`` scales ``s`` by the row's progress, the
  fraction of its positions to generate that are already revealed (0 at the first call), so
  guidance grows as the sample takes shape (as in MUSE-style samplers); it needs no step count,
  so it works for adaptive samplers too. Per-row constants of the logits cancel in the softmax,
  so raw logits and log-probabilities give the same guided law.
- **Top-k and nucleus (top-p) filtering** of each masked position's categorical: keep the ``k``
  largest logits (ties at the k-th value are all kept), then the smallest set of tokens, most
  probable first, whose mass under ``softmax(z / temperature)`` reaches ``p``; the rest get
  ``-inf``. Filtering applies before the position rule, so confidence, entropy or moment scores
  are those of the filtered law (as in Fast-dLLM and LLaDA code paths).

Neither changes the defaults: ``cfg_scale = 0``, ``top_k = top_p = None`` leave the denoiser's
logits untouched (the same tensor is returned).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from unmask.checks import check_integer, is_number
from unmask.samplers.rows import CHUNK_ELEMENTS, NonFiniteLogitsError

CFG_RAMPS = ("constant", "linear")


def check_finite_nonnegative(name: str, value: float, zero_means: str) -> None:
    """``value`` must be a finite number >= 0; the error names ``name`` and what 0 means."""
    if not is_number(value) or math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{name}={value!r} must be a finite number >= 0 (0 = {zero_means})")


def check_logits_options(cfg_scale: float, cfg_ramp: str, top_k: int | None, top_p: float | None) -> None:
    """Validate the shared logits options, naming the offending one."""
    check_finite_nonnegative("cfg_scale", cfg_scale, "no guidance")
    if cfg_ramp not in CFG_RAMPS:
        raise ValueError(f"cfg_ramp={cfg_ramp!r} must be one of {', '.join(CFG_RAMPS)}")
    check_integer("top_k", top_k, or_none="None (no top-k filter)")
    if top_p is not None and (not is_number(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"top_p={top_p!r} must be a number in (0, 1], or None (no nucleus filter)")


def check_guidance(cfg_scale: float, denoiser: Any) -> None:
    """``cfg_scale > 0`` needs a class-conditional denoiser (``num_classes >= 1``)."""
    if cfg_scale and not getattr(denoiser, "num_classes", 0):
        raise ValueError(
            f"cfg_scale={cfg_scale!r} needs a class-conditional denoiser (an attribute num_classes >= 1, "
            f"null label = num_classes); {type(denoiser).__name__} has none"
        )


def check_cond(cfg_scale: float, denoiser: Any, cond: Any, batch_size: int) -> torch.Tensor:
    """The class ids ``[B]`` for guided sampling, validated."""
    classes = denoiser.num_classes
    if cond is None:
        raise ValueError(f"cfg_scale={cfg_scale!r} needs cond: class ids [batch_size] in 0..{classes - 1}")
    return class_ids(cond, classes, batch_size, f" for cfg_scale={cfg_scale!r}")


def class_ids(cond: Any, classes: int, batch_size: int, context: str) -> torch.Tensor:
    """``cond`` as long class ids ``[batch_size]`` in ``0..classes`` (one id is every row's); else an
    error starting with ``cond`` and ``context`` (what needs the ids)."""
    try:
        labels = torch.as_tensor(cond)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"cond{context} must be integer class ids of shape ({batch_size},), got {type(cond).__name__}"
        ) from None
    if labels.dim() == 0:
        labels = labels.expand(batch_size)
    if (
        labels.shape != (batch_size,)
        or labels.is_floating_point()
        or labels.is_complex()
        or labels.dtype == torch.bool
    ):
        raise ValueError(
            f"cond{context} must be integer class ids of shape ({batch_size},), "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    if ((labels < 0) | (labels > classes)).any():
        raise ValueError(f"cond holds class ids outside 0..{classes} (null label = num_classes = {classes})")
    return labels.long()


def guided_logits(
    cond_logits: torch.Tensor, uncond_logits: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """``z_c + scale * (z_c - z_u)``; ``scale`` is ``[B]``.

    A token impossible under both (``-inf`` in both) stays impossible; one impossible under the
    conditional stays impossible; one impossible only under the unconditional model gets
    ``+inf`` and is reported as non-finite later (an exact model never does that).
    """
    delta = cond_logits - uncond_logits
    delta.nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf)
    delta.mul_(scale.to(delta.dtype).view(-1, *([1] * (delta.dim() - 1))))
    return delta.add_(cond_logits)


def filter_rows(
    logits: torch.Tensor,
    rows: torch.Tensor,
    *,
    top_k: int | None,
    top_p: float | None,
    temperature: float,
) -> torch.Tensor:
    """A copy of ``[B, L, V]`` logits whose flat ``rows`` are top-k / nucleus filtered.

    Raises ``NonFiniteLogitsError`` (flat row ids) for a selected row with NaN or ``+inf``.
    """
    vocab = logits.shape[-1]
    out = logits.clone()
    flat = out.view(-1, vocab)
    step = max(1, CHUNK_ELEMENTS // vocab)
    for start in range(0, rows.shape[0], step):
        chunk = rows[start : start + step]
        x = flat.index_select(0, chunk)
        top = x.amax(dim=1)
        bad = torch.isnan(x).any(dim=1) | (top == math.inf) | (top == -math.inf)
        if bad.any():
            raise NonFiniteLogitsError(chunk[bad])
        if top_k is not None and top_k < vocab:
            kth = x.topk(top_k, dim=1).values[:, -1:]
            x.masked_fill_(x < kth, -math.inf)
        if top_p is not None and top_p < 1:
            ordered, order = x.sort(dim=1, descending=True)
            probs = torch.softmax(ordered.double() / temperature, dim=1)
            mass_before = probs.cumsum(dim=1) - probs
            drop = mass_before >= top_p  # the first token always stays (mass before it is 0)
            x.scatter_(1, order, ordered.masked_fill(drop, -math.inf))
        flat[chunk] = x
    return out


def row_progress(tokens: torch.Tensor, mask_id: int, start_masked: torch.Tensor) -> torch.Tensor:
    """Fraction ``[B]`` of each row's positions to generate that are revealed (1 if none)."""
    left = (tokens == mask_id).sum(dim=1).double()
    total = start_masked.double()
    return torch.where(total > 0, 1.0 - left / total.clamp(min=1.0), 1.0)
