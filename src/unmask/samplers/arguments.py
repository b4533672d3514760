"""The arguments of ``Sampler.sample``, checked once per call before any compute.

``check_sample_arguments`` is the one check every public ``sample`` method runs first; each error
is a ``TypeError`` (wrong kind) or ``ValueError`` (wrong value) whose message starts with the
argument's name. The rules:

- ``denoiser``: callable, with integer ``seq_len >= 1`` and ``vocab_size >= 1``.
- ``batch_size``: an integer >= 1 (not a bool, not a float).
- ``generator``: a ``torch.Generator`` on the denoiser's device (``denoiser_device``); ``None``
  is refused, since torch's global RNG would make the run irreproducible.
- ``cond``: for a class-conditional denoiser (integer ``num_classes >= 1``), ``None`` (the null
  label) or class ids ``[batch_size]`` (or one id for every row) in ``0..num_classes``; for any
  other denoiser it is passed through unread, its meaning being the denoiser's own.
- ``init``: ``None`` (all masked) or an integer tensor ``[batch_size, seq_len]`` of ids in
  ``0..vocab_size`` (the mask id, where to generate), on any device; it is copied, never written.
- ``trace``: a bool.
"""

from __future__ import annotations

from typing import Any

import torch

from unmask.checks import check_integer, is_integer
from unmask.samplers.logits import class_ids

INIT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.uint8)


def denoiser_device(denoiser: Any) -> torch.device:
    """The device of a denoiser: its ``device`` attribute, its first parameter, or the CPU."""
    device = getattr(denoiser, "device", None)
    if device is not None:
        return torch.device(device)
    parameters = getattr(denoiser, "parameters", None)
    if callable(parameters):
        for p in parameters():
            return p.device
    return torch.device("cpu")


def same_device(a: torch.device, b: torch.device) -> bool:
    """Same device type, and the same index where both name one (``cuda`` alone is the current one)."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def check_denoiser_contract(denoiser: Any) -> None:
    """``denoiser`` is callable and has integer ``seq_len >= 1`` and ``vocab_size >= 1``."""
    lacks = [name for name in ("seq_len", "vocab_size") if not hasattr(denoiser, name)]
    lacks += [] if callable(denoiser) else ["__call__"]
    if lacks:
        raise TypeError(
            f"denoiser must be a Denoiser (callable(tokens, cond) -> logits, with integer seq_len and "
            f"vocab_size); {type(denoiser).__name__} has no {', '.join(lacks)}"
        )
    check_integer("denoiser.seq_len", denoiser.seq_len)
    check_integer("denoiser.vocab_size", denoiser.vocab_size)


def check_generator(generator: Any, device: torch.device) -> None:
    """``generator`` is a ``torch.Generator`` on ``device`` (the denoiser's)."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)); "
            f"got {generator!r}" + ("" if generator is None else f" of type {type(generator).__name__}")
        )
    if not same_device(generator.device, device):
        raise ValueError(
            f"generator is on {generator.device} but the denoiser is on {device}; "
            f"make it with torch.Generator(device={str(device)!r})"
        )


def check_class_cond(denoiser: Any, cond: Any, batch_size: int) -> None:
    """A class-conditional denoiser's ``cond`` is ``None`` or class ids; other denoisers' is theirs."""
    classes = getattr(denoiser, "num_classes", 0)
    if cond is not None and is_integer(classes) and classes >= 1:
        class_ids(cond, classes, batch_size, "")


def check_init(init: Any, batch_size: int, length: int, vocab: int) -> None:
    """``init`` is ``None`` or an integer tensor ``[batch_size, length]`` of ids in ``0..vocab``."""
    if init is None:
        return
    if not isinstance(init, torch.Tensor):
        raise TypeError(
            f"init must be a torch.Tensor [batch_size, seq_len] of token ids (mask id {vocab} where to "
            f"generate) or None; got {type(init).__name__}"
        )
    if init.shape != (batch_size, length):
        raise ValueError(
            f"init has shape {tuple(init.shape)}; expected (batch_size, seq_len) = ({batch_size}, {length})"
        )
    if init.dtype not in INIT_DTYPES:
        raise ValueError(f"init must be an integer tensor, got {init.dtype}")
    if ((init < 0) | (init > vocab)).any():
        raise ValueError(f"init holds ids outside 0..{vocab} (mask id = vocab_size = {vocab})")


def check_sample_arguments(
    denoiser: Any, batch_size: Any, generator: Any, cond: Any, init: Any, trace: Any
) -> None:
    """Check the arguments of ``sample`` by the rules of this module, naming the bad one."""
    check_denoiser_contract(denoiser)
    check_integer("batch_size", batch_size)
    check_generator(generator, denoiser_device(denoiser))
    check_class_cond(denoiser, cond, batch_size)
    check_init(init, batch_size, denoiser.seq_len, denoiser.vocab_size)
    if not isinstance(trace, bool):
        raise TypeError(f"trace must be a bool (True: record every step); got {trace!r}")
