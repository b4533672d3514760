"""Unmasking schedules and count rules: how many positions each step reveals.

A schedule is a decreasing masked-fraction function ``f`` on progress ``r`` in [0, 1] with
``f(0) = 1`` and ``f(1) = 0``. A count rule turns it into integer counts per step. For a row with
``N`` masked positions (out of ``S`` positions in the run, ``S = L`` or a block) and ``T`` steps:

- ``unmask`` (this project's rule, the default): the number still masked after step ``t`` is
  ``floor(N * f((t + 1) / T))`` in float64, clipped so that every step reveals at least one
  position and leaves at least one per remaining step; a row with fewer masked positions than
  steps reveals one position per step until it is done.
- ``llada`` (LLaDA ``get_num_transfer_tokens``; ``schedule`` must be ``linear``): ``N // T``
  per step, and the first ``N % T`` steps one more.
- ``maskgit_jax`` (google-research/maskgit ``parallel_decode.decode``; ``cosine`` or ``linear``):
  after step ``t < T - 1`` keep ``max(1, min(n_t - 1, floor(N * f((t + 1) / T))))`` masked
  (``n_t`` masked before the step), computed in float32 as the JAX code does (so where
  ``N f`` is an exact integer it can land one lower than float64); the last step reveals the rest.
  A step can reveal nothing (``n_t = 1`` before the end).
- ``maskgit_pytorch`` (valeoai/Maskgit-pytorch ``Trainer/vit.py`` ``adap_sche``): per-step
  counts ``round(S * g(r_t) / sum_t g(r_t))`` on ``r = linspace(1, 0, T)`` (float32), where
  ``g`` is the revealed fraction of that code (``1 - f(r)``, and ``cos(pi/2 r)`` for ``cosine``,
  ``arccos(r) / (pi/2)`` for ``arccos``); zeros become 1, the last step takes what is left of
  ``S``; each count is capped by what is still masked.
- ``halton_maskgit_confidence`` (valeoai's ``Sampler/confidence_sampler.py``, the confidence
  baseline of Halton-MaskGIT): positions known after step ``t`` =
  ``max(t + 1, int(S * g(r_t)))`` with ``r = linspace(0, 1, T)`` (float32) and ``g`` that code's
  revealed fraction; a step reveals what it takes to reach that total.
- ``halton_maskgit`` (valeoai/Halton-MaskGIT ``Sampler/halton_sampler.py``; ``arccos`` only):
  positions known after step ``t`` = ``max(t + 1, int(S * (1 - arccos((t + 1) / T) / (pi/2))))``
  in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

MASKED_FRACTION: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # MaskGIT (Chang et al. 2022): cos(pi/2 * r)
    "cosine": lambda r: torch.cos(0.5 * math.pi * r),
    # arccos(r) / (pi/2), as in Halton-MaskGIT's "arccos" schedule
    "arccos": lambda r: torch.arccos(r) / (0.5 * math.pi),
    "linear": lambda r: 1.0 - r,
    "square": lambda r: 1.0 - r**2,
    "root": lambda r: 1.0 - torch.sqrt(r),
}


COUNT_RULES = (
    "unmask",
    "llada",
    "maskgit_jax",
    "maskgit_pytorch",
    "halton_maskgit_confidence",
    "halton_maskgit",
)
# the schedules each peer's count rule is defined for (the others have all five)
_RULE_SCHEDULES = {"llada": ("linear",), "maskgit_jax": ("cosine", "linear"), "halton_maskgit": ("arccos",)}


def check_count_rule(counts: str, schedule: str) -> None:
    """Raise ``ValueError`` naming ``counts`` (or ``schedule``) if the pair is not defined."""
    if counts not in COUNT_RULES:
        raise ValueError(f"counts={counts!r} is not a known count rule; known: {', '.join(COUNT_RULES)}")
    check_schedule(schedule)
    allowed = _RULE_SCHEDULES.get(counts)
    if allowed is not None and schedule not in allowed:
        raise ValueError(
            f"schedule={schedule!r} is not defined for counts={counts!r}; its schedules: {', '.join(allowed)}"
        )


def check_schedule(schedule: str) -> None:
    """Raise ``ValueError`` naming ``schedule`` if it is not a known schedule."""
    if schedule not in MASKED_FRACTION:
        known = ", ".join(sorted(MASKED_FRACTION))
        raise ValueError(f"schedule={schedule!r} is not a known schedule; known: {known}")


def unmask_counts(
    num_masked: torch.Tensor,
    steps: int,
    schedule: str = "cosine",
    counts: str = "unmask",
    span: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Integer number of positions to reveal at each step, per row (see the module doc).

    Args:
        num_masked: ``[B]`` integer tensor, masked positions per row at the start.
        steps: number of steps ``T >= 1``.
        schedule: a key of ``MASKED_FRACTION``.
        counts: a count rule of ``COUNT_RULES``.
        span: positions in the run per row (``[B]`` or an int; default ``num_masked``): the
            ports of valeoai compute their counts on it, not on the masked count.

    Returns:
        ``[B, T]`` long tensor ``k`` with ``k[b].sum() == num_masked[b]``. With ``unmask``, every
        entry is ``>= 1`` when ``num_masked[b] >= T``; otherwise row ``b`` reveals one position
        per step for its first ``num_masked[b]`` steps.
    """
    check_count_rule(counts, schedule)
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    n = num_masked.to(torch.long).cpu()
    if (n < 0).any():
        raise ValueError("num_masked must be non-negative")
    size = n.clone() if span is None else torch.as_tensor(span, dtype=torch.long).cpu().expand_as(n).clone()
    rule = {
        "unmask": _unmask_rule,
        "llada": _llada_rule,
        "maskgit_jax": _maskgit_jax_rule,
        "maskgit_pytorch": _maskgit_pytorch_rule,
        "halton_maskgit_confidence": _confidence_sampler_rule,
        "halton_maskgit": _halton_sampler_rule,
    }[counts]
    k = rule(n, size, steps, schedule)
    short = k.sum(dim=1) != n
    if short.any():
        b = int(short.nonzero()[0])
        raise ValueError(
            f"counts={counts!r} with steps={steps} reveals {int(k[b].sum())} of the {int(n[b])} masked "
            f"positions of a run of {int(size[b])}; choose fewer steps or another count rule"
        )
    return k.to(num_masked.device)


def _unmask_rule(n: torch.Tensor, size: torch.Tensor, steps: int, schedule: str) -> torch.Tensor:
    progress = torch.arange(1, steps + 1, dtype=torch.float64) / steps
    fraction = MASKED_FRACTION[schedule](progress).clamp(0.0, 1.0)
    fraction[-1] = 0.0  # guard against rounding: everything is revealed at the last step
    target = torch.floor(n[:, None].double() * fraction[None, :]).long()  # masked after step t
    remaining = torch.empty_like(target)
    previous = n.clone()
    for t in range(steps):
        steps_left_after = steps - 1 - t
        upper = previous - 1  # reveal at least one
        lower = torch.full_like(previous, steps_left_after)  # leave one per remaining step
        after = torch.minimum(torch.maximum(target[:, t], lower), upper)
        # rows with fewer masked positions than steps: one per step, then nothing
        after = torch.where(n >= steps, after, (previous - 1).clamp(min=0))
        remaining[:, t] = after
        previous = after
    before = torch.cat([n[:, None], remaining[:, :-1]], dim=1)
    return before - remaining


def _llada_rule(n: torch.Tensor, size: torch.Tensor, steps: int, schedule: str) -> torch.Tensor:
    first = torch.arange(steps)[None, :] < (n % steps)[:, None]
    return (n // steps)[:, None] + first.long()


def _maskgit_jax_rule(n: torch.Tensor, size: torch.Tensor, steps: int, schedule: str) -> torch.Tensor:
    ratio = torch.arange(1, steps + 1, dtype=torch.float32) / torch.tensor(steps, dtype=torch.float32)
    if schedule == "cosine":
        fraction = torch.cos(torch.tensor(math.pi / 2.0, dtype=torch.float32) * ratio)
    else:  # "uniform" in the JAX code
        fraction = 1.0 - ratio
    fraction = fraction.clamp(1e-6, 1.0)
    target = torch.floor(n[:, None].to(torch.float32) * fraction[None, :]).long()
    counts = torch.zeros(n.shape[0], steps, dtype=torch.long)
    left = n.clone()
    for t in range(steps - 1):
        keep = torch.clamp(torch.minimum(left - 1, target[:, t]), min=1)
        keep = torch.minimum(keep, left)  # a done row stays done
        counts[:, t] = left - keep
        left = keep
    counts[:, -1] = left
    return counts


def _valeoai_revealed_fraction(r: torch.Tensor, schedule: str, decreasing: bool) -> torch.Tensor:
    """The revealed fraction of valeoai's code at float32 points ``r``.

    ``decreasing`` (``Trainer/vit.py``, ``r`` from 1 to 0) uses that file's formulas;
    otherwise those of ``confidence_sampler.py`` (``r`` from 0 to 1).
    """
    half_pi = math.pi * 0.5
    if decreasing:
        return {
            "root": lambda: 1 - r**0.5,
            "linear": lambda: 1 - r,
            "square": lambda: 1 - r**2,
            "cosine": lambda: torch.cos(r * math.pi * 0.5),
            "arccos": lambda: torch.arccos(r) / half_pi,
        }[schedule]()
    return {
        "root": lambda: r**0.5,
        "linear": lambda: r,
        "square": lambda: r**2,
        "cosine": lambda: 1 - torch.cos(r * math.pi * 0.5),
        "arccos": lambda: 1 - (torch.arccos(r) / half_pi),
    }[schedule]()


def _maskgit_pytorch_rule(n: torch.Tensor, size: torch.Tensor, steps: int, schedule: str) -> torch.Tensor:
    value = _valeoai_revealed_fraction(torch.linspace(1, 0, steps), schedule, decreasing=True)
    counts = torch.zeros(n.shape[0], steps, dtype=torch.long)
    for b, s in enumerate(size.tolist()):
        per_step = ((value / value.sum()) * s).round()
        per_step[per_step == 0] = 1
        per_step[-1] += s - per_step.sum()
        left = int(n[b])
        for t, k in enumerate(per_step.int().tolist()):
            take = max(0, min(k, left))
            counts[b, t] = take
            left -= take
    return counts


def _cumulative_counts(n: torch.Tensor, size: torch.Tensor, known_after: torch.Tensor) -> torch.Tensor:
    """Per-step reveals that bring the known positions (``size - n`` at the start) up to the
    targets ``known_after`` ``[B, T]`` (a step whose target is already met reveals nothing)."""
    counts = torch.zeros_like(known_after)
    known = size - n
    for t in range(known_after.shape[1]):
        take = torch.clamp(known_after[:, t] - known, min=0)
        take = torch.minimum(take, size - known)
        counts[:, t] = take
        known = known + take
    return counts


def _confidence_sampler_rule(n: torch.Tensor, size: torch.Tensor, steps: int, schedule: str) -> torch.Tensor:
    value = _valeoai_revealed_fraction(torch.linspace(0, 1, steps), schedule, decreasing=False)
    targets = torch.stack([(value * s).int().long() for s in size.tolist()])
    targets = torch.maximum(targets, torch.arange(1, steps + 1)[None, :])
    return _cumulative_counts(n, size, targets)


def _halton_sampler_rule(n: torch.Tensor, size: torch.Tensor, steps: int, schedule: str) -> torch.Tensor:
    rows = []
    for s in size.tolist():
        row = []
        for t in range(steps):
            revealed = 1 - (torch.arccos(torch.tensor((t + 1) / steps)) / (math.pi * 0.5))
            row.append(max(t + 1, int(revealed * s)))
        rows.append(row)
    return _cumulative_counts(n, size, torch.tensor(rows, dtype=torch.long))
