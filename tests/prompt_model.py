"""A prompt-taking stand-in denoiser for tests: its logits make the completion of a prompt known.

``PromptCounter`` (V = 10 digits, L = 6) encodes a prompt's characters as digits (``"123"`` ->
``[1, 2, 3]``) and predicts, at generated position ``j``, the digit ``(last + 1 + j) mod 10``
with logit 60 (others 0), ``last`` being the prompt's last digit (0 without a prompt): whatever
the sampler, the completion of ``"..7"`` is ``890123``. It records the prompt rows of each call."""

from __future__ import annotations

from typing import Any

import torch

from unmask.data.prompts import PromptBatch


class PromptCounter:
    vocab_size, pad_token_id = 10, 0
    tokenizer = "digits"  # a text model to the metrics (unmask.metrics.suite.domain_of)

    def __init__(self, seq_len: int = 6, max_context: int | None = 16):
        self.seq_len, self.max_context = seq_len, max_context
        self.seen: list[list[list[int]]] = []

    def encode_prompt(self, text: str) -> list[int]:
        return [int(c) for c in text if c.isdigit()]

    def decode(self, tokens: torch.Tensor) -> list[str]:
        return ["".join(str(int(t)) for t in row) for row in tokens]

    def __call__(self, tokens: torch.Tensor, cond: Any = None) -> torch.Tensor:
        batch, length = tokens.shape
        last = torch.zeros(batch, dtype=torch.long)
        if isinstance(cond, PromptBatch):
            self.seen.append([cond.prompt_ids(r) for r in range(batch)])
            last = torch.tensor([(cond.prompt_ids(r) or [0])[-1] for r in range(batch)])
        target = (last[:, None] + 1 + torch.arange(length)[None, :]) % self.vocab_size
        return torch.nn.functional.one_hot(target, self.vocab_size).float() * 60.0
