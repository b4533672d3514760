"""Shared test denoisers, the ``subprocess`` marker (tests that start another process, left out
of ``make test-fast``), and the settings of ``make test``'s two xdist workers."""

from __future__ import annotations

import os

import pytest
import torch


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "subprocess: starts another process (not in make test-fast)")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # two workers share the two cores: one thread each, and for the processes they start
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items) -> None:
    """The tests of the one local SLURM node run on one worker, one after the other
    (``--dist loadgroup``), so that their jobs never wait on each other's allocations."""
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))


class RandomNetDenoiser:
    """A fixed random function of the tokens: embeddings -> mix over positions -> logits.

    Deterministic, cheap, and dependent on every observed token, so samplers see logits that
    change as tokens are revealed.
    """

    def __init__(self, vocab_size: int, seq_len: int, seed: int = 0, scale: float = 2.0):
        g = torch.Generator().manual_seed(seed)
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.embed = torch.randn(vocab_size + 1, 8, generator=g)
        self.mix = torch.randn(seq_len, seq_len, generator=g) / seq_len**0.5
        self.out = torch.randn(8, vocab_size, generator=g) * scale
        self.bias = torch.randn(seq_len, vocab_size, generator=g)
        self.calls = 0

    def __call__(self, tokens: torch.Tensor, cond=None) -> torch.Tensor:
        self.calls += 1
        h = torch.tanh(self.mix @ self.embed[tokens])  # [B, L, 8]
        return h @ self.out + self.bias


class FixedLogits:
    """Returns the same logits whatever the tokens (a product law)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        self.seq_len, self.vocab_size = logits.shape[-2:]

    def __call__(self, tokens: torch.Tensor, cond=None) -> torch.Tensor:
        return self.logits.expand(tokens.shape[0], -1, -1)


class ConditionalRandomNet(RandomNetDenoiser):
    """``RandomNetDenoiser`` plus a class bias: class-conditional, ``cond`` = ids ``[B]``, null id
    ``num_classes`` (also used when ``cond`` is None). Records the labels of every call."""

    def __init__(self, vocab_size: int, seq_len: int, num_classes: int = 3, seed: int = 0):
        super().__init__(vocab_size, seq_len, seed=seed)
        g = torch.Generator().manual_seed(seed + 1)
        self.num_classes = num_classes
        self.class_bias = torch.randn(num_classes + 1, vocab_size, generator=g) * 2.0
        self.labels_seen: list[torch.Tensor] = []

    def __call__(self, tokens: torch.Tensor, cond=None) -> torch.Tensor:
        labels = torch.full((tokens.shape[0],), self.num_classes) if cond is None else torch.as_tensor(cond)
        self.labels_seen.append(labels.clone())
        return super().__call__(tokens) + self.class_bias[labels][:, None, :]
