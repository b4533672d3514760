"""A result is bound to the weights that produced it: retrained weights at the same checkpoint
path are another run, never resumed from the old shards."""

import json
import shutil

import torch

from hydra_cli import run_in_process
from unmask.models.checkpoint import load_card, load_model, resolve, save_checkpoint

RUN = [
    "num_samples=4",
    "batch_size=4",
    "budget=4",
    "metrics=fast",
    "save_samples=false",
    "dataset=shakespeare",
]


def test_new_weights_at_the_same_path_refuse_the_old_shards(tmp_path, capsys, monkeypatch):
    from unmask.cli import evaluate

    def run(run_dir):  # unmask-eval in this process (tests/hydra_cli.py)
        overrides = ["model=shakespeare", f"model.name={stem}", *RUN]
        return run_in_process(evaluate, run_dir, overrides, capsys, monkeypatch)

    weights, card = resolve("shakespeare")
    stem = tmp_path / "ckpt" / "shakespeare"
    stem.parent.mkdir()
    shutil.copy(weights, stem.with_suffix(".safetensors"))
    shutil.copy(card, stem.with_suffix(".json"))
    run_dir = tmp_path / "run"
    code, err = run(run_dir)
    assert code == 0, err[-2000:]
    # retrain (here: perturb) into the same path, the card's sha256 updated by save_checkpoint
    net = load_model(stem)
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    save_checkpoint(net, {k: v for k, v in load_card(stem).items() if k != "weights_sha256"}, stem)
    (run_dir / "results.json").unlink()
    code, err = run(run_dir)
    assert code == 2, err[-2000:]
    assert "holds shards of another configuration" in err
    assert not (run_dir / "results.json").exists()
    # and with the old weights restored, the old run resumes (same key)
    shutil.copy(weights, stem.with_suffix(".safetensors"))
    shutil.copy(card, stem.with_suffix(".json"))
    code, err = run(run_dir)
    assert code == 0, err[-2000:]
    assert json.loads((run_dir / "results.json").read_text())["status"] == "complete"
