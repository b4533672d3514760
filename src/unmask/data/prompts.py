"""Prompts as a sampler's ``cond``: the contract between a dataset of prompts and a denoiser that
takes them.

A prompt-taking denoiser (the Hugging Face adapters in ``unmask.models``) generates ``seq_len``
tokens *after* a prompt: the sampler sees only those ``seq_len`` positions (so a peer's block
schedule, LLaDA's say, is over the generated part exactly as in its code), and the denoiser puts
the prompt in front of them on every call. It offers:

- ``encode_prompt(text) -> list[int]``: the model's ids of a prompt (its chat template applied
  if the adapter is configured so);
- ``max_context``: the most positions the model takes (prompt + ``seq_len``), or ``None``;
- ``pad_token_id``: the id that fills the left of a prompt shorter than the batch's longest;
- ``__call__(tokens, cond)`` with ``cond`` a ``PromptBatch`` (or ``None``: no prompt).

Prompts of one batch differ in length, so they are left-padded and the padding is masked out of
attention: with relative (rotary) positions every real token then sees the same context as it
would unpadded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PromptBatch:
    """The prompts of a batch's rows: ``ids`` ``[B, P]`` long, left-padded; ``attention``
    ``[B, P]`` bool, True at real prompt tokens; ``index`` ``[B]`` long, each row's prompt number
    in its source (the line of the prompt file)."""

    ids: torch.Tensor
    attention: torch.Tensor
    index: torch.Tensor

    @staticmethod
    def of(prompts: Sequence[Sequence[int]], pad_token_id: int, index: Sequence[int]) -> PromptBatch:
        """Left-pad ``prompts`` (lists of ids) to the longest with ``pad_token_id``."""
        width = max((len(p) for p in prompts), default=0)
        ids = torch.full((len(prompts), width), int(pad_token_id), dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.bool)
        for row, prompt in enumerate(prompts):
            if prompt:
                ids[row, width - len(prompt) :] = torch.as_tensor(list(prompt), dtype=torch.long)
                attention[row, width - len(prompt) :] = True
        return PromptBatch(ids, attention, torch.as_tensor(list(index), dtype=torch.long))

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    def to(self, device: torch.device | str) -> PromptBatch:
        return PromptBatch(self.ids.to(device), self.attention.to(device), self.index.to(device))

    def repeat(self, times: int) -> PromptBatch:
        """The batch stacked ``times`` over (rows ``0..B-1`` again and again), as a sampler's doubled
        batch needs."""
        return PromptBatch(
            self.ids.repeat(times, 1), self.attention.repeat(times, 1), self.index.repeat(times)
        )

    def prompt_ids(self, row: int) -> list[int]:
        """Row ``row``'s prompt without its padding."""
        return self.ids[row][self.attention[row]].tolist()


def with_prompt(tokens: torch.Tensor, prompts: PromptBatch | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(input_ids [B, P + L], attention_mask [B, P + L] long, P)``: the prompt in front of
    ``tokens`` (already in the model's ids), all generated positions attended. ``P`` is 0 without
    prompts; the logits of the generated positions are those from index ``P`` on."""
    ones = torch.ones_like(tokens, dtype=torch.long)
    if prompts is None or prompts.width == 0:
        return tokens, ones, 0
    if prompts.ids.shape[0] != tokens.shape[0]:
        raise ValueError(f"cond holds {prompts.ids.shape[0]} prompts for a batch of {tokens.shape[0]}")
    prompts = prompts.to(tokens.device)
    ids = torch.cat([prompts.ids, tokens], dim=1)
    attention = torch.cat([prompts.attention.long(), ones], dim=1)
    return ids, attention, prompts.width
