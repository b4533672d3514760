"""``unmask-train`` runs for real (Hydra app, Lightning, real data) for 20 steps and writes a
checkpoint that loads and samples."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hydra_cli import ROOT, run_cli
from unmask.lightning.heldout import heldout_card_metrics, heldout_nelbo_bits, validation_split
from unmask.models.checkpoint import load_card, load_model
from unmask.samplers import build


def run_train(tmp_path: Path, *overrides: str):
    return run_cli("unmask.cli.train", tmp_path, *overrides)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["mdlm", "maskgit"])
def test_twenty_step_shakespeare_training_writes_a_loadable_checkpoint(tmp_path, objective):
    result = run_train(
        tmp_path,
        "pretrain=shakespeare",
        "max_steps=20",
        "val_every=10",
        "val_batches=2",
        "batch_size=8",
        "net.width=32",
        "net.depth=1",
        "net.heads=2",
        f"objective={objective}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((tmp_path / "shakespeare.json").read_text())
    assert card["training"]["steps"] == 20 and card["training"]["objective"] == objective
    assert card["metrics"]["val/nelbo_bits"] > 0
    # the held-out NELBO: all 1805 windows of the held-out plays x 4 draws, and scoring the saved
    # checkpoint again from its card (what experiments/val_nelbo.py --record does) gives the same
    windows = validation_split(tmp_path / "shakespeare")
    again = heldout_card_metrics(heldout_nelbo_bits(load_model(tmp_path / "shakespeare"), windows, 84, 4), 4)
    heldout = {k: v for k, v in card["metrics"].items() if k.startswith("heldout/")}
    assert heldout.keys() == again.keys() and heldout["heldout/sequences"] == 1805
    assert all(abs(heldout[k] - again[k]) < 1e-6 for k in heldout), (heldout, again)
    assert card["data"]["sha256"].startswith("f393d09d")
    assert len(card["tokenizer"]["alphabet"]) == card["config"]["vocab_size"]
    model = load_model(tmp_path / "shakespeare")
    with torch.no_grad():
        out = build("moment", steps=4).sample(model, 2, generator=torch.Generator().manual_seed(0))
    assert out.tokens.shape == (2, 128)
    curves = (tmp_path / "shakespeare_curves.csv").read_text().splitlines()
    assert curves[0] == "curve,step,bits_per_token" and any(r.startswith("val,") for r in curves)
    assert (tmp_path / "shakespeare_curves.png").stat().st_size > 0


@pytest.mark.slow
def test_val_nelbo_record_writes_what_training_records_into_a_card(tmp_path):
    """experiments/val_nelbo.py --record on a card without heldout/* (as the shipped ones were)
    writes the numbers training wrote; two checkpoints of one name are refused in one line."""
    tiny = ["pretrain=shakespeare", "max_steps=5", "val_every=5", "val_batches=1", "batch_size=8"]
    result = run_train(tmp_path, *tiny, "net.width=32", "net.depth=1", "net.heads=2", "heldout_draws=2")
    assert result.returncode == 0, result.stderr[-3000:]
    card_path = tmp_path / "shakespeare.json"
    card = json.loads(card_path.read_text())
    trained = {k: v for k, v in card["metrics"].items() if k.startswith("heldout/")}
    assert trained["heldout/draws"] == 2
    card["metrics"] = {k: v for k, v in card["metrics"].items() if k not in trained}
    card_path.write_text(json.dumps(card, indent=2))
    script = [sys.executable, "experiments/val_nelbo.py", str(tmp_path / "shakespeare")]
    recorded = subprocess.run(
        [*script, "--draws", "2", "--record"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    again = {k: v for k, v in load_card(tmp_path / "shakespeare")["metrics"].items() if k in trained}
    assert again.keys() == trained.keys() and all(abs(again[k] - trained[k]) < 1e-6 for k in trained)
    twice = subprocess.run([*script, "shakespeare"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert twice.returncode == 2 and "share a name" in twice.stderr.splitlines()[-1], twice.stderr


@pytest.mark.slow
def test_training_continues_from_a_checkpoint_and_records_its_lineage(tmp_path):
    tiny = ["pretrain=shakespeare", "val_every=10", "val_batches=2", "batch_size=8", "heldout_draws=0"]
    tiny += ["net.width=32", "net.depth=1", "net.heads=2"]
    first = run_train(tmp_path / "first", *tiny, "max_steps=10")
    assert first.returncode == 0, first.stderr[-3000:]
    start = load_model(tmp_path / "first" / "shakespeare").state_dict()
    second = run_train(
        tmp_path / "second",
        *tiny,
        "max_steps=1",
        "lr=1e-12",
        f"init_from={tmp_path / 'first' / 'shakespeare'}",
    )
    assert second.returncode == 0, second.stderr[-3000:]
    card = json.loads((tmp_path / "second" / "shakespeare.json").read_text())
    assert not any(k.startswith("heldout/") for k in card["metrics"]), "heldout_draws=0 records none"
    lineage = card["training"]["init_from"]
    first_card = json.loads((tmp_path / "first" / "shakespeare.json").read_text())
    assert lineage["weights_sha256"] == first_card["weights_sha256"]
    assert lineage["training"]["steps"] == 10 and lineage["metrics"] == first_card["metrics"]
    # one step at lr 1e-12 (and EMA 0.99 of two equal copies) leaves the weights where they started
    after = load_model(tmp_path / "second" / "shakespeare").state_dict()
    assert all(torch.allclose(after[k], start[k], atol=1e-6) for k in start)


@pytest.mark.slow
def test_a_deeper_recipe_grows_the_checkpoint_it_starts_from(tmp_path):
    """net.depth above the checkpoint's appends identity blocks: at lr 1e-12 the grown network's
    validation NELBO (the same batches) is the source's, and the card says what was appended."""
    tiny = ["pretrain=shakespeare", "val_every=10", "val_batches=2", "batch_size=8"]
    tiny += ["net.width=32", "net.heads=2"]
    first = run_train(tmp_path / "first", *tiny, "net.depth=1", "max_steps=10")
    assert first.returncode == 0, first.stderr[-3000:]
    grown = run_train(
        tmp_path / "grown",
        *tiny,
        "net.depth=3",
        "max_steps=1",
        "lr=1e-12",
        f"init_from={tmp_path / 'first' / 'shakespeare'}",
    )
    assert grown.returncode == 0, grown.stderr[-3000:]
    card = json.loads((tmp_path / "grown" / "shakespeare.json").read_text())
    first_card = json.loads((tmp_path / "first" / "shakespeare.json").read_text())
    assert card["config"]["depth"] == 3 and card["training"]["init_from"]["appended_identity_blocks"] == 2
    before, after = first_card["metrics"]["val/nelbo_bits"], card["metrics"]["val/nelbo_bits"]
    assert abs(after - before) < 1e-4, (before, after)


@pytest.mark.slow
def test_twenty_step_vq_training(tmp_path):
    result = run_train(
        tmp_path, "pretrain=mnist_vq", "max_steps=20", "val_every=10", "val_batches=2", "net.hidden=16"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    vq = load_model(tmp_path / "mnist_vq")
    assert vq.encode(torch.zeros(2, 28, 28, dtype=torch.uint8)).shape == (2, 49)


def test_diverged_training_writes_and_ships_nothing(tmp_path):
    from unmask.models.checkpoint import CHECKPOINT_DIR

    shipped = {p.name: p.stat().st_mtime_ns for p in CHECKPOINT_DIR.iterdir()}
    result = run_train(
        tmp_path,
        "pretrain=shakespeare",
        "max_steps=4",
        "val_every=4",
        "val_batches=1",
        "batch_size=4",
        "net.width=16",
        "net.depth=1",
        "lr=1e12",  # diverges in a few steps (NaN weights and NELBO)
        "warmup_steps=0",
        "ship=true",
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "training diverged" in result.stderr and "no checkpoint was written" in result.stderr
    assert not list(tmp_path.rglob("*.safetensors"))
    assert {p.name: p.stat().st_mtime_ns for p in CHECKPOINT_DIR.iterdir()} == shipped
