"""``PromptBatch``: prompts left-padded with their attention, and put in front of the tokens."""

from __future__ import annotations

import torch

from unmask.data.prompts import PromptBatch, with_prompt


def test_prompts_are_left_padded_and_recovered_exactly():
    batch = PromptBatch.of([[5, 6, 7], [8], []], pad_token_id=0, index=[2, 0, 1])
    assert batch.ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 0, 0]]
    assert batch.attention.tolist() == [[True] * 3, [False, False, True], [False] * 3]
    assert [batch.prompt_ids(r) for r in range(3)] == [[5, 6, 7], [8], []]
    assert batch.index.tolist() == [2, 0, 1]
    assert batch.repeat(2).index.tolist() == [2, 0, 1, 2, 0, 1]


def test_the_prompt_goes_in_front_and_every_generated_position_is_attended():
    tokens = torch.tensor([[1, 2], [3, 4]])
    ids, attention, width = with_prompt(tokens, PromptBatch.of([[9, 9], [7]], 0, [0, 1]))
    assert width == 2
    assert ids.tolist() == [[9, 9, 1, 2], [0, 7, 3, 4]]
    assert attention.tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]
    same, ones, none = with_prompt(tokens, None)
    assert none == 0 and same is tokens and ones.tolist() == [[1, 1], [1, 1]]
