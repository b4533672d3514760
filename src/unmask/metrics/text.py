"""Text diversity statistics, always reported next to any perplexity: unigram entropy (bits) of
all generated tokens pooled, the mean per-sample entropy, and distinct-n (unique n-grams / total
n-grams over all samples), all on the model's own token ids.

Intervals (``unmask.metrics.intervals``): ``sample_entropy_bits`` is a mean over samples (its
standard error); ``unigram_entropy_bits`` and ``distinct_n`` are pooled statistics (bootstrap over
samples; distinct-n replicates sit below the point estimate, since a resample repeats samples)."""

from __future__ import annotations

import math
from typing import Any

import torch

from unmask.metrics.intervals import Bootstrap, bootstrapped, entropy_bits, mean_stderr

DISTINCT_N = (1, 2, 4)


def unigram_entropy_bits(tokens: torch.Tensor, vocab_size: int) -> float:
    counts = torch.bincount(tokens.reshape(-1), minlength=vocab_size).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum() / math.log(2))


def sample_entropies_bits(tokens: torch.Tensor, vocab_size: int) -> list[float]:
    """Each sample's own unigram entropy (bits)."""
    return [unigram_entropy_bits(row, vocab_size) for row in tokens]


def mean_sample_entropy_bits(tokens: torch.Tensor, vocab_size: int) -> float:
    """Mean over samples of each sample's own unigram entropy (the "entropy" that MDLM and ReMDM
    report next to generative perplexity: it drops when a sample repeats itself)."""
    return sum(sample_entropies_bits(tokens, vocab_size)) / max(1, tokens.shape[0])


def distinct_n(tokens: torch.Tensor, n: int) -> float:
    grams = [tuple(row[i : i + n]) for row in tokens.tolist() for i in range(len(row) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def gram_ids(tokens: torch.Tensor, n: int) -> torch.Tensor:
    """``[N, L - n + 1]`` ids of the n-grams of each sample (equal n-grams, equal ids)."""
    grams = tokens.long().unfold(1, n, 1)  # [N, G, n]
    _, inverse = torch.unique(grams.reshape(-1, n), dim=0, return_inverse=True)
    return inverse.view(grams.shape[0], grams.shape[1])


def bootstrap_distinct_n(tokens: torch.Tensor, n: int, counts: torch.Tensor) -> torch.Tensor:
    """``[B]`` distinct-n of each resample (``counts [B, N]``): the n-grams of the drawn samples,
    over the ``N (L - n + 1)`` n-grams a resample of ``N`` equal-length samples holds."""
    if tokens.shape[1] < n:
        return torch.zeros(counts.shape[0], dtype=torch.float64)
    ids = gram_ids(tokens, n)
    total = ids.numel()
    out = torch.empty(counts.shape[0], dtype=torch.float64)
    for b, weights in enumerate(counts):
        present = torch.zeros(int(ids.max()) + 1, dtype=torch.bool)
        present[ids[weights > 0].reshape(-1)] = True
        out[b] = int(present.sum()) / total
    return out


def bootstrap_unigram_entropy(tokens: torch.Tensor, vocab_size: int, counts: torch.Tensor) -> torch.Tensor:
    """``[B]`` pooled unigram entropy (bits) of each resample (``counts [B, N]``)."""
    rows = torch.arange(tokens.shape[0]).repeat_interleave(tokens.shape[1])
    index = torch.stack([tokens.reshape(-1).long(), rows])
    ones = torch.ones(index.shape[1], dtype=torch.float64)
    shape = (vocab_size, tokens.shape[0])
    per_sample = torch.sparse_coo_tensor(index, ones, shape, check_invariants=True).coalesce()
    histograms = torch.sparse.mm(per_sample, counts.double().T).T  # [B, V]
    return entropy_bits(histograms)


def text_statistics(
    tokens: torch.Tensor, vocab_size: int, bootstrap: Bootstrap | None = None
) -> dict[str, Any]:
    """The statistics; with ``bootstrap``, each with its interval (module docstring)."""
    entropies = sample_entropies_bits(tokens, vocab_size)
    out: dict[str, Any] = {
        "unigram_entropy_bits": unigram_entropy_bits(tokens, vocab_size),
        "sample_entropy_bits": sum(entropies) / max(1, tokens.shape[0]),
    }
    out |= {f"distinct_{n}": distinct_n(tokens, n) for n in DISTINCT_N}
    if bootstrap is None:
        return out
    counts = bootstrap.counts(tokens.shape[0])
    out["sample_entropy_bits_stderr"] = mean_stderr(torch.tensor(entropies, dtype=torch.float64))
    replicates = bootstrap_unigram_entropy(tokens, vocab_size, counts)
    out |= bootstrapped("unigram_entropy_bits", out["unigram_entropy_bits"], replicates)
    for n in DISTINCT_N:
        name = f"distinct_{n}"
        out |= bootstrapped(name, out[name], bootstrap_distinct_n(tokens, n, counts))
    return out
