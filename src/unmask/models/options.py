"""What every checkpoint adapter does the same way: the ``model.dtype`` option and the check of the
token ids it is called with."""

from __future__ import annotations

from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def weights_dtype(value: Any) -> torch.dtype:
    """The weights' dtype named by ``value`` (``float32``, ``bfloat16``, ``float16``, with or
    without ``torch.``, or the dtype itself); ``ValueError`` naming ``dtype`` otherwise."""
    if isinstance(value, torch.dtype) and value in DTYPES.values():
        return value
    if isinstance(value, str) and value.removeprefix("torch.") in DTYPES:
        return DTYPES[value.removeprefix("torch.")]
    raise ValueError(f"dtype={value!r} must be one of {', '.join(DTYPES)}")


def checked_tokens(tokens: Any, seq_len: int, vocab_size: int, device: torch.device) -> torch.Tensor:
    """``tokens`` as long ids ``[B, seq_len]`` on ``device``, each in ``0 .. vocab_size`` (our mask id
    is ``vocab_size``); ``ValueError`` naming the shape or the range otherwise."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] != seq_len:
        got = list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be [B, {seq_len}], got {got}")
    tokens = tokens.to(device, torch.long)
    if ((tokens < 0) | (tokens > vocab_size)).any():
        raise ValueError(f"tokens must be ids in 0..{vocab_size} (mask id = {vocab_size})")
    return tokens
