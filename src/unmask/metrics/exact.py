"""Exact metrics on oracle laws: NLL under the true law, and distances to a tabular joint.

- ``nll``: mean and standard error of ``-log p(x)`` over samples, with ``p`` the oracle's law.
  For a sampler with law ``q`` this estimates the cross-entropy ``H(q, p) = H(q) + KL(q || p)``:
  samplers sharper than ``p`` (low temperature) score BELOW the data entropy ``H(p)``, so always
  read it next to ``reference_nll`` (the same statistic on exact samples).
- ``compare_to_joint``: empirical law of the samples against a ``TabularJoint``: total variation,
  ``KL(q_hat || p)``, a G-test p-value (``2 n KL ~ chi2(K - 1)`` under exact sampling), and the
  99% quantile of the TV an exact sampler would show with the same number of samples.

Intervals (``unmask.metrics.intervals``): ``nll`` and ``reference_nll`` are means over samples
(their standard errors); ``tv`` and ``kl`` are bootstrapped over the samples
(``bootstrap_distances``; TV and KL of an empirical law are biased upwards at finite n, and their
replicates more so: read ``exact_tv_q99`` for what exact sampling gives). The G-test p-value and
``exact_tv_q99`` (a Monte Carlo reference of exact sampling, not an estimate from the samples)
have none.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from unmask.metrics.intervals import Estimate
from unmask.models.oracle import TabularJoint

NLL = Estimate  # nats per sequence


def nll(oracle, samples: torch.Tensor) -> NLL:
    """Mean negative log-likelihood (nats per sequence) of ``samples`` under ``oracle``."""
    values = -oracle.log_prob(samples.cpu()).to(torch.float64)
    if not torch.isfinite(values).all():
        return NLL(math.inf, math.nan, values.numel())
    return NLL.of(values)


def reference_nll(oracle, n: int, seed: int = 0) -> NLL:
    """``nll`` of ``n`` exact samples from the oracle: an estimate of the data entropy."""
    return nll(oracle, oracle.sample(n, torch.Generator().manual_seed(seed)))


def empirical_law(joint: TabularJoint, samples: torch.Tensor) -> torch.Tensor:
    """Counts of each sequence of the table (float64 ``[V**L]``)."""
    idx = joint.index(samples.cpu())
    return torch.bincount(idx, minlength=joint.probs.numel()).to(torch.float64)


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    return 0.5 * float((p - q).abs().sum())


def kl_divergence(q: torch.Tensor, p: torch.Tensor) -> float:
    """``KL(q || p)``, with ``0 log 0 = 0`` (``inf`` if ``q`` puts mass where ``p`` has none)."""
    support = q > 0
    if (p[support] <= 0).any():
        return math.inf
    return float((q[support] * (q[support] / p[support]).log()).sum())


def chi2_sf(statistic: float, dof: int) -> float:
    """Survival function of the chi-square law: ``P(chi2_dof > statistic)``."""
    x = torch.tensor(statistic / 2.0, dtype=torch.float64)
    return float(torch.special.gammaincc(torch.tensor(dof / 2.0, dtype=torch.float64), x))


def g_test(counts: torch.Tensor, law: torch.Tensor) -> tuple[float, float]:
    """``(G, p-value)`` of observed ``counts`` against ``law``: ``G = 2 n KL(q_hat || law)``, chi-square
    with (support of ``law``) - 1 degrees of freedom (p = 0 if the counts leave the support)."""
    n = float(counts.sum())
    g = 2.0 * n * kl_divergence(counts / n, law)
    return g, chi2_sf(g, int((law > 0).sum()) - 1) if math.isfinite(g) else 0.0


def exact_tv_quantile(
    p: torch.Tensor, n: int, quantile: float = 0.99, draws: int = 400, seed: int = 0
) -> float:
    """Quantile of the TV between ``p`` and the empirical law of ``n`` exact draws (Monte Carlo)."""
    g = torch.Generator().manual_seed(seed)
    tvs = []
    for _ in range(draws):
        counts = torch.bincount(torch.multinomial(p, n, replacement=True, generator=g), minlength=p.numel())
        tvs.append(total_variation(counts.double() / n, p))
    return float(torch.tensor(tvs).quantile(quantile))


def bootstrap_distances(
    joint: TabularJoint, samples: torch.Tensor, counts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tv [B], kl [B])`` of the empirical law of each resample of ``samples`` (``counts [B, n]``
    draws of each sample) against ``joint``."""
    idx = joint.index(samples.cpu())
    laws = torch.zeros(counts.shape[0], joint.probs.numel(), dtype=torch.float64)
    laws.scatter_add_(1, idx.expand(counts.shape[0], -1), counts.double())
    laws /= laws.sum(dim=1, keepdim=True)
    p = joint.probs.double()
    tv = torch.tensor([total_variation(q, p) for q in laws], dtype=torch.float64)
    kl = torch.tensor([kl_divergence(q, p) for q in laws], dtype=torch.float64)
    return tv, kl


@dataclass(frozen=True)
class JointComparison:
    n: int
    tv: float
    kl: float
    g_statistic: float
    p_value: float
    exact_tv_q99: float
    empirical_entropy: float
    true_entropy: float

    def as_dict(self) -> dict:
        return asdict(self)


def compare_to_joint(joint: TabularJoint, samples: torch.Tensor) -> JointComparison:
    """How far the empirical law of ``samples`` is from ``joint`` (see the module docstring)."""
    counts = empirical_law(joint, samples)
    n = int(counts.sum())
    q = counts / n
    p = joint.probs
    g, p_value = g_test(counts, p)
    nz = q[q > 0]
    return JointComparison(
        n=n,
        tv=total_variation(q, p),
        kl=kl_divergence(q, p),
        g_statistic=g,
        p_value=p_value,
        exact_tv_q99=exact_tv_quantile(p, n),
        empirical_entropy=float(-(nz * nz.log()).sum()),
        true_entropy=joint.entropy(),
    )
