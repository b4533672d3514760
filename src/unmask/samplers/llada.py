"""LLaDA's low-confidence remasking (Nie et al. 2025, arXiv 2502.09992; ML-GSAI/LLaDA
``generate.py``, with ``remasking="low_confidence"``), the default decoding of LLaDA, Fast-dLLM
and dllm. Sample, then choose, like MaskGIT, but ranked without noise and without temperature:

  1. draw a proposal ``x~_i ~ softmax(z_i / temperature)`` at every masked position
     (``temperature = 0``: ``x~_i = argmax_v z_i(v)``);
  2. rank the masked positions by ``p_i(x~_i)``, the UNTEMPERED probability ``softmax(z_i)`` of
     the proposal (ties: lowest position first);
  3. keep the ``k_t`` best with their proposals; LLaDA's counts are ``counts="llada"`` (``N // T``
     per step, the first ``N % T`` steps one more) on the ``linear`` schedule.

LLaDA's block-wise generation is ``semi_ar`` around this sampler (the ``llada`` peer of
``peers.py``). At ``temperature = 1`` this is ``maskgit`` with ``alpha -> 0`` and no annealing;
at other temperatures nothing else in this package has this law: MaskGIT ranks by the tempered
probability.
"""

from __future__ import annotations

from dataclasses import dataclass

from unmask.samplers.base import StepSampler
from unmask.samplers.choose import masked_flat_rows, scatter_scores, top_positions
from unmask.samplers.proposals import chosen_proposals, propose


@dataclass(frozen=True)
class LowConfidenceSampler(StepSampler):
    schedule: str = "linear"
    counts: str = "llada"

    def step(self, logits, masked, counts, step, generator):
        rows = masked_flat_rows(masked)
        proposals, confidence = propose(logits, rows, self.temperature, generator)
        positions, valid = top_positions(scatter_scores(confidence, rows, masked.shape), counts)
        return positions, valid, chosen_proposals(proposals, rows, positions, valid, masked)
