"""The ``dataset`` group's conditioning through ``unmask-eval`` (in-process Hydra runs): prompts
from a JSONL file reach a prompt-taking model and stay in the decoded record; infill datasets
keep the given part of held-out data exactly; both enter the resume key, and bad prompt files are
refused in one line before any sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hydra_cli import run_in_process
from unmask.cli import evaluate

TESTS = Path(__file__).resolve().parents[1]
SMALL = ["num_samples=4", "batch_size=2", "budget=4", "metrics.names=[]"]
COUNTER = [f"hydra.searchpath=[file://{TESTS / 'conf'}]", "model=prompt_counter", "dataset=prompts"]
COUNTER += ["dataset.block_length=3", "dataset.llada_block_length=3"]  # L = 6


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prompts_from_a_file_condition_every_sample_and_stay_in_the_record(tmp_path, capsys, monkeypatch):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "3", "answer": 42}\n{"prompt": "97"}\n{"prompt": "5"}\n')
    run = tmp_path / "run"
    overrides = [*COUNTER, f"dataset.path={prompts}", "dataset.conditioning.samples_per_prompt=2", *SMALL]
    code, err = run_in_process(evaluate, run, [*overrides, "sampler=maskgit"], capsys, monkeypatch)
    assert code == 0, err
    records = read_jsonl(run / "samples.jsonl")
    # PromptCounter completes a prompt ending in d with d+1, d+2, ... (mod 10): known exactly
    assert [(r["prompt"], r["completion"], r["prompt_line"]) for r in records] == [
        ("3", "456789", 1),
        ("3", "456789", 1),
        ("97", "890123", 2),
        ("97", "890123", 2),
    ]
    assert records[0]["answer"] == 42 and records[2]["text"] == "97890123"
    result = json.loads((run / "results.json").read_text())
    assert result["conditioning"]["prompts_in_file"] == 3 and result["conditioning"]["prompts_used"] == 2
    assert torch.load(run / "sources.pt").tolist() == [0, 0, 1, 1]
    prompts.write_text('{"prompt": "4"}\n')  # an edited prompt file is another run: refused here
    code, err = run_in_process(evaluate, run, [*overrides, "sampler=maskgit"], capsys, monkeypatch)
    assert code == 2 and "holds shards of another configuration" in err, err


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (
            '{"prompt": "1234567890123"}\n',
            [],
            "prompts.jsonl:1: prompt of 13 tokens + model.seq_len=6 exceeds",
        ),
        ('{"prompt": "1"}\n{"text": "2"}\n', [], "prompts.jsonl:2: no text under 'prompt'"),
        (None, [], "dataset.path"),
        ('{"prompt": "1"}\n', ["class_label=1"], "class_label=1"),
    ],
)
def test_bad_prompt_input_is_one_line_before_sampling(tmp_path, capsys, monkeypatch, content, extra, message):
    overrides = [*COUNTER, *SMALL, *extra]
    if content is not None:
        (tmp_path / "prompts.jsonl").write_text(content)
        overrides.append(f"dataset.path={tmp_path / 'prompts.jsonl'}")
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run" / "shards").exists() or not list((tmp_path / "run" / "shards").iterdir())


def test_a_model_that_takes_no_prompts_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "p.jsonl").write_text('{"prompt": "To be"}\n')
    overrides = ["model=shakespeare", "dataset=prompts", f"dataset.path={tmp_path / 'p.jsonl'}", *SMALL]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 2 and "prompts need a model that takes them" in err, err


def test_shakespeare_infill_keeps_the_given_prefix_of_held_out_text(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    overrides = ["model=shakespeare", "dataset=shakespeare_infill", *SMALL]
    code, err = run_in_process(evaluate, run, overrides, capsys, monkeypatch)
    assert code == 0, err
    records = read_jsonl(run / "samples.jsonl")
    assert [r["source_row"] for r in records] == [0, 1, 2, 3]
    assert all(r["text"][:32] == r["original"][:32] and len(r["text"]) == 128 for r in records)
    assert sum(r["text"][32:] != r["original"][32:] for r in records) >= 3  # the rest is generated
    conditioning = json.loads((run / "results.json").read_text())["conditioning"]
    assert conditioning["kind"] == "infill" and conditioning["source"] == "shakespeare val split"
    code, err = run_in_process(
        evaluate, run, [*overrides, "dataset.conditioning.keep=0.5"], capsys, monkeypatch
    )
    assert code == 2 and "holds shards of another configuration" in err, err


def test_mnist_inpainting_keeps_the_codes_outside_the_box(tmp_path, capsys, monkeypatch):
    from unmask.data.mnist import load_mnist
    from unmask.models.pretrained import load_denoiser

    run = tmp_path / "run"
    code, err = run_in_process(
        evaluate, run, ["model=mnist", "dataset=mnist_inpaint", *SMALL], capsys, monkeypatch
    )
    assert code == 0, err
    tokens = torch.load(run / "samples.pt")
    codes = load_denoiser("mnist").vq.encode(load_mnist("val")[0][:4])
    box = torch.zeros(7, 7, dtype=torch.bool)
    box[1:6, 1:6] = True  # keep 0.5 on 7 x 7: a centred 5 x 5 box generated
    outside = ~box.reshape(-1)
    assert torch.equal(tokens[:, outside], codes[:, outside])
    assert (run / "samples.png").exists()
