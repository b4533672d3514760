"""Intervals on the metrics: every metric ``m`` estimated from the samples comes with ``m_stderr``
(a standard error) in ``results.json``, and with ``m_ci95 = [low, high]`` where a bootstrap gives it.

The rules, each stated once here (the metric modules say which one they use):

- **mean over samples** (``nll``, ``reference_nll``, ``sample_entropy_bits``): ``stderr = s /
  sqrt(n)``, ``s`` the sample standard deviation (``n - 1``); no ``ci95``.
- **ratio of sums** (``gen_ppl``: ``r = sum a_i / sum b_i`` over samples, ``a`` the NLL and ``b``
  the token count of sample ``i``): delta method, ``stderr(r) = sqrt(sum (a_i - r b_i)^2 / (n (n -
  1))) / mean(b)``; a function ``f(r)`` gets ``|f'(r)| stderr(r)`` (``exp``: ``ppl * stderr(r)``); no
  ``ci95``.
- **pooled or nonlinear statistics** (FIDs, label entropy, unigram entropy, distinct-n, TV and KL
  of an empirical law): nonparametric bootstrap over the samples. Replicate ``b`` gives sample ``i``
  (in batch order, the order ``reduce`` joins the shards in) the weight ``w_bi``, the number of
  times it is drawn in ``n`` draws with replacement; the statistic is computed on the weighted
  samples, which equals computing it on the resampled set. ``B`` replicates
  (``metrics.bootstrap.replicates``) from a generator seeded by the run's seed
  (``bootstrap_seed``): the weights depend only on ``(n, B, seed)``, so reruns and any number of
  processes give bit-identical intervals, and one run's metrics share the same resamples.
  ``stderr`` = standard deviation of the replicates (``B - 1``), ``ci95`` = their 2.5 and 97.5
  percentiles (linear interpolation; the nearest replicates when some are infinite). A bootstrap
  replicate repeats samples, so statistics that are biased at finite ``n`` (FID up, distinct-n
  down) have replicates shifted by about that bias: the percentile interval then sits off the
  point estimate, and ``stderr`` is the number to compare runs with.
- ``B = 0`` turns the bootstrap off: the ``_stderr`` keys are NaN and the ``_ci95`` keys
  ``[NaN, NaN]``, so the keys are always there; so do fewer than 2 samples.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_REPLICATES = 100


def bootstrap_seed(seed: int) -> int:
    """The bootstrap generator's seed for a run seeded with ``seed`` (apart from every batch seed)."""
    return int(hashlib.sha256(f"unmask-bootstrap:{seed}".encode()).hexdigest()[:15], 16)


@functools.lru_cache(maxsize=4)
def bootstrap_counts(n: int, replicates: int, seed: int) -> torch.Tensor:
    """``[replicates, n]`` int64: how many times each of the ``n`` samples is drawn in each replicate
    (``n`` uniform draws with replacement; each row sums to ``n``)."""
    generator = torch.Generator().manual_seed(bootstrap_seed(seed))
    draws = torch.randint(n, (replicates, n), generator=generator)
    return torch.zeros(replicates, n, dtype=torch.long).scatter_add_(1, draws, torch.ones_like(draws))


@dataclass(frozen=True)
class Bootstrap:
    """The bootstrap of one run: ``replicates`` resamples drawn from the run's ``seed``."""

    replicates: int = DEFAULT_REPLICATES
    seed: int = 0

    def counts(self, n: int) -> torch.Tensor:
        """``[replicates, n]`` draw counts of ``n`` samples (``bootstrap_counts``; do not modify);
        no replicates for fewer than 2 samples (their spread would read 0)."""
        return bootstrap_counts(n, self.replicates if n > 1 else 0, self.seed)


def spread(replicates: Sequence[float] | torch.Tensor) -> tuple[float, list[float]]:
    """``(stderr, [low, high])`` of bootstrap replicates (see the module docstring)."""
    values = np.asarray(torch.as_tensor(replicates, dtype=torch.float64).tolist(), dtype=np.float64)
    if values.size < 2:
        return math.nan, [math.nan, math.nan]
    if np.isfinite(values).all():
        low, high = np.percentile(values, [2.5, 97.5])
        return float(values.std(ddof=1)), [float(low), float(high)]
    low, high = np.quantile(values, [0.025, 0.975], method="nearest")
    return math.nan, [float(low), float(high)]


def bootstrapped(name: str, value: float, replicates: Sequence[float] | torch.Tensor) -> dict:
    """``{name: value, name_stderr: ..., name_ci95: [low, high]}``."""
    stderr, ci95 = spread(replicates)
    return {name: value, f"{name}_stderr": stderr, f"{name}_ci95": ci95}


def mean_stderr(values: torch.Tensor) -> float:
    """Standard error of the mean of per-sample ``values`` (NaN for fewer than 2)."""
    x = values.double()
    n = x.numel()
    return float(x.std(unbiased=True) / math.sqrt(n)) if n > 1 else math.nan


@dataclass(frozen=True)
class Estimate:
    """A mean over samples with its standard error (``mean_stderr``) and the number of samples."""

    mean: float
    stderr: float
    n: int

    @classmethod
    def of(cls, values: torch.Tensor) -> Estimate:
        values = values.to(torch.float64).reshape(-1)
        return cls(float(values.mean()), mean_stderr(values), values.numel())


def ratio_stderr(numerator: torch.Tensor, denominator: torch.Tensor) -> float:
    """Delta-method standard error of ``sum numerator / sum denominator`` over samples."""
    a, b = numerator.double(), denominator.double()
    n = a.numel()
    if n < 2 or float(b.sum()) == 0:
        return math.nan
    ratio = a.sum() / b.sum()
    residual = a - ratio * b
    return float((residual.pow(2).sum() / (n * (n - 1))).sqrt() / b.mean())


def weighted_histograms(labels: torch.Tensor, counts: torch.Tensor, classes: int) -> torch.Tensor:
    """``[B, classes]`` float64 label histograms of the weighted samples (``labels [n]``,
    ``counts [B, n]``)."""
    out = torch.zeros(counts.shape[0], classes, dtype=torch.float64)
    return out.scatter_add_(1, labels.long().expand(counts.shape[0], -1), counts.double())


def entropy_bits(histograms: torch.Tensor) -> torch.Tensor:
    """Entropy (bits) of each row of ``histograms`` (counts or weights; ``0 log 0 = 0``)."""
    p = histograms.double() / histograms.double().sum(dim=-1, keepdim=True)
    terms = torch.where(p > 0, p * p.log(), torch.zeros_like(p))
    return -terms.sum(dim=-1) / math.log(2)
