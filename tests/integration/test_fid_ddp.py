"""A sharded ``fid`` run gives the numbers of one process: ``unmask-eval`` on a tiny MaskGIT (RGB
8 x 8 images, tests/tiny_maskgit.py) with ``dataset.reference`` an ``.npz`` of 2048-d statistics,
the shipped Inception computing features on the rank that made each batch, once with one process
and once with two (Lightning DDP, gloo). The FID and its bootstrap interval must be bit-identical:
the bootstrap sees only the joined features in batch order."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hydra_cli import run_cli
from tiny_maskgit import tiny_overrides, write_files

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_two_processes_give_the_fid_and_interval_of_one(tmp_path):
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2048, 64)) / 8
    np.savez(
        tmp_path / "ref.npz", mu=rng.normal(size=2048) * 0.1, sigma=basis @ basis.T + 0.01 * np.eye(2048)
    )
    files = write_files(tmp_path / "ckpt")
    setup = [
        *tiny_overrides(files),
        "dataset=imagenet",
        f"dataset.reference={tmp_path / 'ref.npz'}",
        "model.device=cpu",
        "metrics=auto",
        "metrics.bootstrap.replicates=3",  # each replicate decomposes a 2048 x 2048 matrix
        "metrics.fid.batch_size=4",
        "sampler=maskgit",
        "sampler.steps=4",
        "num_samples=8",
        "batch_size=4",
    ]
    env = {"OMP_NUM_THREADS": "1"}
    one = run_cli("unmask.cli.evaluate", tmp_path / "one", *setup, "hardware=cpu", env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_cli("unmask.cli.evaluate", tmp_path / "two", *setup, "hardware=ddp", env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    single = json.loads((tmp_path / "one" / "results.json").read_text())
    sharded = json.loads((tmp_path / "two" / "results.json").read_text())
    assert sharded["hardware"]["world_size"] == 2
    assert set(single["metrics"]) == {"fid", "fid_stderr", "fid_ci95"}, (
        "metrics=auto: fid for a reference file"
    )
    assert sharded["metrics"] == single["metrics"]
    assert single["metrics"]["fid"] > 0 and single["metrics"]["fid_stderr"] > 0
    ranks = {torch.load(p)["rank"] for p in (tmp_path / "two" / "shards").glob("batch_*.pt")}
    assert ranks == {0, 1}, "both processes computed Inception features of their batches"
