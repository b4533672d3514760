"""Text diversity statistics, always reported next to any perplexity: unigram entropy (bits) of
all generated tokens pooled, the mean per-sample entropy, and distinct-n (unique n-grams / total
n-grams over all samples)."""

from __future__ import annotations

import math

import torch


def unigram_entropy_bits(tokens: torch.Tensor, vocab_size: int) -> float:
    counts = torch.bincount(tokens.reshape(-1), minlength=vocab_size).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum() / math.log(2))


def mean_sample_entropy_bits(tokens: torch.Tensor, vocab_size: int) -> float:
    """Mean over samples of each sample's own unigram entropy (the "entropy" that MDLM and ReMDM
    report next to generative perplexity: it drops when a sample repeats itself)."""
    return sum(unigram_entropy_bits(row, vocab_size) for row in tokens) / max(1, tokens.shape[0])


def distinct_n(tokens: torch.Tensor, n: int) -> float:
    grams = [tuple(row[i : i + n]) for row in tokens.tolist() for i in range(len(row) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def text_statistics(tokens: torch.Tensor, vocab_size: int) -> dict[str, float]:
    return {
        "unigram_entropy_bits": unigram_entropy_bits(tokens, vocab_size),
        "sample_entropy_bits": mean_sample_entropy_bits(tokens, vocab_size),
        "distinct_1": distinct_n(tokens, 1),
        "distinct_2": distinct_n(tokens, 2),
        "distinct_4": distinct_n(tokens, 4),
    }
