"""Exact errors of whole sampling trajectories on an oracle law, and of single steps.

**Path KL.** A choose-then-sample (CTS) sampler at temperature 1 on an oracle ``p`` reveals, at
each call, a set ``S_t`` chosen from the predictions and independent randomness, and draws its
tokens independently from the exact conditionals ``p_i(. | x_obs)``. The ideal sampler ``P`` makes
the same choices but draws ``X_S`` jointly from ``p(. | x_obs)``; its final law is ``p`` exactly
(the argument of Proposition 3). The KL between the two trajectory laws is

    KL(Q_path || P_path) = E_Q sum_t [ sum_{i in S_t} log p_i(x_i | x_obs_t) - log p(x_S_t | x_obs_t) ],

and by data processing it bounds the KL of the sampler's final law, ``KL(q || p) <= path KL``
(0 for one position per step). Each bracket is exact per sample: ``log p_i`` from the predictions
the sampler was given, ``log p(x_S | x_obs) = log p(x_obs u x_S) - log p(x_obs)`` from the oracle's
marginal likelihood (``log_prob`` on a partially masked sequence marginalises the masked positions).
``PathKL`` wraps an oracle, follows every call (full calls, and the ``encode``/``refresh`` calls of
partial caching) and accumulates the brackets per sample; the mean over samples has a standard
error. It is meaningful only for CTS samplers whose tokens are drawn at temperature 1 from the
returned predictions (not MaskGIT, whose choice depends on its draws, nor tempered tokens).
``stale=True`` makes every ``refresh`` return the step's first predictions: a deliberately stale
cache, whose law is that of the step without sub-steps.

**One step (Proposition 4).** For a state ``x_obs`` and a set ``S = A u B`` of masked positions,
``TC(X_S | x_obs) <= sum_{i in A} H(X_i | x_obs) + TC(X_B | x_obs)``; the total correlation is
``TC(X_S) = E[log p(X_S | x_obs) - sum_i log p_i(X_i | x_obs)]`` under exact joint draws
(``oracle.sample_given``), a Monte Carlo mean with a standard error; the entropies are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


class PathKL:
    """An oracle that records the path KL of the trajectories sampled from it (module doc).

    Use one instance per ``sample`` call; ``finish(tokens)`` closes the last step and returns the
    per-sample path KL ``[B]`` (nats)."""

    def __init__(self, oracle: Any, stale: bool = False):
        self.oracle = oracle
        self.vocab_size, self.seq_len = oracle.vocab_size, oracle.seq_len
        self.stale = stale
        self.grid = getattr(oracle, "grid", None)
        self.tokens: torch.Tensor | None = None
        self.log_probs: torch.Tensor | None = None  # float64 [B, L, V], what the sampler was given
        self.step_logits: torch.Tensor | None = None  # the last full call's logits (stale refresh)
        self.log_lik: torch.Tensor | None = None
        self.total: torch.Tensor | None = None

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    def _advance(self, tokens: torch.Tensor) -> None:
        """Add the bracket of the positions revealed since the last call."""
        tokens = tokens.cpu()
        log_lik = self.oracle.log_prob(tokens).to(torch.float64)
        if self.tokens is not None:
            assert self.log_probs is not None and self.log_lik is not None and self.total is not None
            was_masked = self.tokens == self.mask_id
            if ((tokens == self.mask_id) & ~was_masked).any():
                raise ValueError("PathKL follows samplers that never re-mask a revealed position")
            revealed = was_masked & (tokens != self.mask_id)
            picked = self.log_probs.gather(2, torch.where(revealed, tokens, 0)[..., None]).squeeze(2)
            self.total += torch.where(revealed, picked, 0.0).sum(dim=1) - (log_lik - self.log_lik)
        else:
            self.total = torch.zeros(tokens.shape[0], dtype=torch.float64)
        self.tokens, self.log_lik = tokens.clone(), log_lik

    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        self._advance(tokens)
        logits = self.oracle(tokens, cond)
        self.log_probs = torch.log_softmax(logits.to(torch.float64), dim=2)
        self.step_logits = logits
        return logits

    def encode(self, tokens: torch.Tensor, cond: Any | None = None) -> tuple[torch.Tensor, None]:
        return self(tokens, cond), None

    def refresh(
        self, tokens: torch.Tensor, rows: torch.Tensor, cache: Any, cond: Any | None = None
    ) -> torch.Tensor:
        self._advance(tokens)
        assert self.step_logits is not None and self.log_probs is not None
        if self.stale:
            fresh = self.step_logits.gather(1, rows[:, :, None].expand(-1, -1, self.vocab_size))
        else:
            fresh = self.oracle.refresh(tokens, rows, cache, cond)
        index = rows[:, :, None].expand(-1, -1, self.vocab_size)
        self.log_probs.scatter_(1, index, torch.log_softmax(fresh.to(torch.float64), dim=2))
        return fresh

    def finish(self, tokens: torch.Tensor) -> torch.Tensor:
        """Close the trajectory at the final ``tokens``; the per-sample path KL ``[B]``."""
        if (tokens == self.mask_id).any():
            raise ValueError("finish() needs fully revealed tokens")
        self._advance(tokens)
        assert self.total is not None
        return self.total


@dataclass(frozen=True)
class PathRun:
    """``path_kl``'s result: the per-sample path KL ``[n]``, the samples ``[n, L]`` and the mean
    cost (forward-equivalents)."""

    kl: torch.Tensor
    tokens: torch.Tensor
    cost: float


def path_kl(
    sampler: Any, oracle: Any, num_samples: int, seed: int, batch_size: int = 250, stale: bool = False
) -> PathRun:
    """``num_samples`` trajectories of ``sampler`` on ``oracle``, each with its path KL."""
    generator = torch.Generator().manual_seed(seed)
    totals, samples, cost = [], [], 0.0
    for start in range(0, num_samples, batch_size):
        recorder = PathKL(oracle, stale=stale)
        out = sampler.sample(recorder, min(batch_size, num_samples - start), generator=generator)
        totals.append(recorder.finish(out.tokens))
        samples.append(out.tokens)
        cost += out.cost * out.tokens.shape[0]
    return PathRun(torch.cat(totals), torch.cat(samples), cost / num_samples)


def entropies(log_probs: torch.Tensor) -> torch.Tensor:
    """Exact entropy (nats) of each categorical row of ``log_probs`` ``[..., V]``."""
    return -(log_probs.exp() * torch.where(torch.isfinite(log_probs), log_probs, 0.0)).sum(dim=-1)


def total_correlation_terms(
    oracle: Any, tokens: torch.Tensor, subset: torch.Tensor, draws: torch.Tensor, log_probs: torch.Tensor
) -> torch.Tensor:
    """Per draw ``[B, D]``: ``log p(x_S | x_obs) - sum_{i in S} log p_i(x_i | x_obs)`` for the
    positions ``subset`` (bool ``[B, L]``) of exact joint draws ``draws`` ``[B, D, L]`` of the
    masked positions of ``tokens`` ``[B, L]``; its mean over draws estimates ``TC(X_S | x_obs)``."""
    batch, count, length = draws.shape
    base = oracle.log_prob(tokens).to(torch.float64)  # [B]
    filled = torch.where(subset[:, None, :], draws, tokens[:, None, :]).reshape(batch * count, length)
    joint = oracle.log_prob(filled).to(torch.float64).view(batch, count) - base[:, None]
    picked = log_probs[:, None].expand(-1, count, -1, -1).gather(3, draws[..., None]).squeeze(3)
    marginal = torch.where(subset[:, None, :], picked, 0.0).sum(dim=2)
    return joint - marginal
