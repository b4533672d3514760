"""Conditioning from the dataset (``unmask.data.conditioning``): prompts from a JSONL file reach
the denoiser row by row and are refused when they cannot fit; infill patterns give exactly the
positions they name (checked against masks written out by hand), and the given tokens survive
sampling for every sampler."""

from __future__ import annotations

import json

import pytest
import torch

from prompt_model import PromptCounter
from unmask.data.conditioning import Infill, PromptFile, pattern_mask
from unmask.samplers import build, peer_samplers, registered_samplers
from unmask.samplers.budget import budget_key, spend_budget


def write_jsonl(path, lines):
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_each_sample_gets_its_prompt_and_the_completion_follows_it(tmp_path):
    file = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "17", "id": "a"}, {"prompt": "4"}, {"ids": [2, 5]}])
    model = PromptCounter()
    prepared = PromptFile(samples_per_prompt=2).prepare(model, file)
    given = prepared.batch(first=2, size=5)  # samples 2..6 -> prompts 1, 1, 2, 2, 0
    assert given.source_index.tolist() == [1, 1, 2, 2, 0] and given.init is None
    out = build("moment", steps=3).sample(
        model, 5, generator=torch.Generator().manual_seed(0), cond=given.cond
    )
    assert model.decode(out.tokens) == ["567890", "567890", "678901", "678901", "890123"]
    assert all(rows == [[4], [4], [2, 5], [2, 5], [1, 7]] for rows in model.seen)
    records = prepared.decoded(out.tokens, given.source_index)
    assert records[4] == {
        "index": 4,
        "prompt_line": 1,
        "prompt": "17",
        "id": "a",
        "completion": "890123",
        "text": "17890123",
    }
    assert prepared.record(num_samples=5) | {"path": None} == {
        "kind": "prompts",
        "path": None,
        "sha256": prepared.sha256,
        "prompts_in_file": 3,
        "prompts_used": 3,
        "samples_per_prompt": 2,
    }


def test_the_fingerprint_follows_the_prompt_ids(tmp_path):
    model = PromptCounter()
    one = PromptFile().prepare(model, write_jsonl(tmp_path / "a.jsonl", [{"prompt": "12"}]))
    same = PromptFile().prepare(model, write_jsonl(tmp_path / "b.jsonl", [{"ids": [1, 2]}]))
    other = PromptFile().prepare(model, write_jsonl(tmp_path / "c.jsonl", [{"prompt": "13"}]))
    assert one.fingerprint == same.fingerprint != other.fingerprint


@pytest.mark.parametrize(
    ("lines", "model", "message"),
    [
        ([{"prompt": "1" * 11}], PromptCounter(), "p.jsonl:1: prompt of 11 tokens + model.seq_len=6 exceeds"),
        ([{"prompt": "1"}, {"text": "2"}], PromptCounter(), "p.jsonl:2: no text under 'prompt'"),
        ([{"ids": [3, 10]}], PromptCounter(), "p.jsonl:1: id 10 is outside the vocabulary 0..9"),
        ([{"ids": "3"}], PromptCounter(), "p.jsonl:1: ids must be a list of integers"),
        ([], PromptCounter(), "holds no prompt"),
        ([{"prompt": "1"}], object(), "prompts need a model that takes them (encode_prompt)"),
    ],
)
def test_bad_prompts_are_refused_naming_the_line(tmp_path, lines, model, message):
    file = write_jsonl(tmp_path / "p.jsonl", lines) if lines else tmp_path / "p.jsonl"
    if not lines:
        file.write_text("\n")
    with pytest.raises(ValueError, match=r"^dataset\.") as raised:
        PromptFile().prepare(model, file)
    assert message in str(raised.value)


def test_a_line_that_is_not_json_and_a_missing_file_are_named(tmp_path):
    file = tmp_path / "p.jsonl"
    file.write_text('{"prompt": "1"}\n{"prompt": \n')
    with pytest.raises(ValueError, match=r"p\.jsonl:2: not JSON"):
        PromptFile().prepare(PromptCounter(), file)
    with pytest.raises(ValueError, match=r"^dataset\.path=.*nope\.jsonl: no such file"):
        PromptFile().prepare(PromptCounter(), tmp_path / "nope.jsonl")


def mask_string(mask: torch.Tensor) -> str:
    return "".join("g" if m else "." for m in mask.tolist())


def test_fixed_patterns_give_exactly_the_positions_they_name():
    assert mask_string(pattern_mask("prefix", 0.25, 8)) == "gg......"
    assert mask_string(pattern_mask("suffix", 0.25, 8)) == "......gg"
    assert mask_string(pattern_mask("center", 0.5, 8)) == "gg....gg"
    box = pattern_mask("center", 0.5, 49, grid=(7, 7)).reshape(7, 7)  # a 5 x 5 box masked
    assert [mask_string(row) for row in box] == ["g" * 7] + ["g.....g"] * 5 + ["g" * 7]


class Rows:
    """A stand-in model over ``rows`` (for the file source): V = 5, L = 8."""

    vocab_size, seq_len = 5, 8

    def __call__(self, tokens, cond=None):
        return torch.zeros(*tokens.shape, self.vocab_size)

    def decode(self, tokens):
        return ["".join(map(str, row.tolist())) for row in tokens]


def test_random_patterns_keep_their_share_and_repeat_by_sample(tmp_path):
    """Given share over 400 samples x 8 positions = 3200 draws of Bernoulli(0.3): mean within
    4 standard errors (0.0324) of 0.3; the same sample index always gets the same mask."""
    torch.save(torch.randint(0, 5, (10, 8), generator=torch.Generator().manual_seed(0)), tmp_path / "r.pt")
    prepared = Infill(source="file", pattern="random", keep=0.3).prepare(Rows(), tmp_path / "r.pt")
    init = prepared.batch(0, 400).init
    share = (init != 5).float().mean().item()
    assert abs(share - 0.3) < 4 * (0.3 * 0.7 / 3200) ** 0.5
    assert torch.equal(prepared.batch(7, 3).init, init[7:10])


def test_infill_rows_cycle_and_the_rest_is_masked(tmp_path):
    rows = torch.arange(24).reshape(3, 8) % 5
    torch.save(rows, tmp_path / "r.pt")
    prepared = Infill(source="file", pattern="prefix", keep=0.5).prepare(Rows(), tmp_path / "r.pt")
    given = prepared.batch(2, 3)
    assert given.source_index.tolist() == [2, 0, 1]
    expected = torch.cat([rows[[2, 0, 1], :4], torch.full((3, 4), 5)], dim=1)
    assert torch.equal(given.init, expected)
    assert prepared.record(2)["rows_used"] == 2


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (torch.zeros(3, 7, dtype=torch.long), "rows of shape (3, 7); the model needs [N, 8]"),
        (torch.full((3, 8), 5), "holds ids outside the vocabulary 0..4"),
        (torch.zeros(3, 8), "must hold an integer tensor"),
    ],
)
def test_bad_infill_data_is_refused_naming_the_file(tmp_path, array, message):
    torch.save(array, tmp_path / "r.pt")
    with pytest.raises(ValueError, match=r"^dataset\.path=") as raised:
        Infill(source="file").prepare(Rows(), tmp_path / "r.pt")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "stripes"}, "dataset.conditioning.pattern='stripes' must be one of"),
        ({"keep": 1.0}, "dataset.conditioning.keep=1.0 must be a number in [0, 1)"),
        ({"source": "cifar"}, "dataset.conditioning.source='cifar' must be one of"),
    ],
)
def test_bad_infill_options_are_refused_naming_the_key(kwargs, message):
    with pytest.raises(ValueError) as raised:
        Infill(**kwargs)
    assert str(raised.value).startswith(message)


def params_for(name: str, length: int) -> dict:
    params = {"block_length": length // 2} if name == "semi_ar" else {}
    return params if budget_key(name) is None else spend_budget(name, params, 4, length)


@pytest.mark.parametrize("name", registered_samplers() + peer_samplers())
def test_every_sampler_keeps_the_given_tokens_and_fills_the_rest(tmp_path, name):
    from conftest import RandomNetDenoiser

    rows = torch.randint(0, 5, (4, 8), generator=torch.Generator().manual_seed(1))
    torch.save(rows, tmp_path / "r.pt")
    model = RandomNetDenoiser(5, 8)
    prepared = Infill(source="file", pattern="center", keep=0.5).prepare(model, tmp_path / "r.pt")
    given = prepared.batch(0, 4)
    sampler = build(name, **params_for(name, 8))
    out = sampler.sample(model, 4, generator=torch.Generator().manual_seed(0), init=given.init)
    kept = given.init != 5
    assert torch.equal(out.tokens[kept], rows[kept]) and (out.tokens < 5).all()
