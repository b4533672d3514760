"""Fault injection for reliability tests of a sampling pipeline (yours or ours).

``FaultyDenoiser(base, fault, at_call)`` behaves like ``base`` until its ``at_call``-th call
(1-based), which returns NaN logits at two positions (``fault="nan_logits"``), logits of the
wrong shape (``"wrong_shape"``), or raises (``"exception"``). ``conf/model/faulty.yaml`` wraps
the mixture oracle; the reliability suite checks that each fault stops ``unmask-eval`` with one
line naming the step (and the positions), and that nothing in the run directory claims success.
"""

from __future__ import annotations

from typing import Any

import torch

from unmask.checks import check_integer

FAULTS = ("nan_logits", "wrong_shape", "exception")


class InjectedFaultError(RuntimeError):
    """What ``fault="exception"`` raises."""


class FaultyDenoiser:
    def __init__(self, base: Any, fault: str = "nan_logits", at_call: int = 1):
        if fault not in FAULTS:
            raise ValueError(f"fault={fault!r} must be one of {', '.join(FAULTS)}")
        check_integer("at_call", at_call)
        self.base, self.fault, self.at_call = base, fault, at_call
        self.vocab_size, self.seq_len = base.vocab_size, base.seq_len
        self.calls = 0

    def __getattr__(self, name: str) -> Any:  # grid, decode, ... of the base
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        self.calls += 1
        logits = self.base(tokens, cond)
        if self.calls != self.at_call:
            return logits
        if self.fault == "nan_logits":
            logits = logits.clone()
            logits[0, :2] = float("nan")
            return logits
        if self.fault == "wrong_shape":
            return logits[:, :-1]
        raise InjectedFaultError(f"injected failure at denoiser call {self.calls}")
