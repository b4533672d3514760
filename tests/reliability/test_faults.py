"""Faults lose nothing: an evaluation killed at random points (SIGTERM and SIGKILL, several
seeds) and rerun in the same directory ends with the samples and metrics of an uninterrupted run;
a shard that is torn, altered, or missing its manifest record is regenerated, never read; runs
are deterministic (same config and seed, repeated; a longer run extends a shorter one)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hydra_cli import ROOT, run_cli

# the shipped MNIST model, 8 batches, with the domain FID computed per batch: a run of ~15 s
RUN = ["model=mnist", "sampler=moment", "sampler.steps=12", "num_samples=64", "batch_size=8", "metrics=fast"]
BATCHES = 8
ENV = {"OMP_NUM_THREADS": "1"}


def evaluate(run_dir: Path, *extra: str):
    result = run_cli("unmask.cli.evaluate", run_dir, *RUN, *extra, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    results = evaluate(run_dir)
    return torch.load(run_dir / "samples.pt"), results["metrics"]


def shards_done(folder: Path) -> int:
    return len(list(folder.glob("batch_*.json")))


# each case kills the run after a random number of shards (seeded); three cases keep the suite's
# time (about 15 s each): a graceful and a hard kill at one point, a hard kill at another
INTERRUPTIONS = [
    (signal.SIGTERM, 0),
    (signal.SIGKILL, 0),
    (signal.SIGKILL, 1),
]


@pytest.mark.parametrize(("sig", "seed"), INTERRUPTIONS, ids=[f"{s.name}-seed{n}" for s, n in INTERRUPTIONS])
def test_killed_run_rerun_in_place_equals_the_uninterrupted_run(tmp_path, uninterrupted, sig, seed):
    rng = random.Random(seed)
    after_shards, extra_delay = rng.randint(1, BATCHES - 3), rng.uniform(0.0, 0.4)
    process = subprocess.Popen(
        [sys.executable, "-m", "unmask.cli.evaluate", f"hydra.run.dir={tmp_path}", *RUN],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while (
        shards_done(tmp_path / "shards") < after_shards and process.poll() is None and time.time() < deadline
    ):
        time.sleep(0.02)
    time.sleep(extra_delay)
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    interrupted = process.returncode != 0
    if interrupted:
        assert not (tmp_path / "results.json").exists(), "a killed run left a results.json"
        assert shards_done(tmp_path / "shards") < BATCHES
    if sig == signal.SIGTERM and interrupted:
        assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    samples, metrics = uninterrupted
    results = evaluate(tmp_path)  # rerun in the same directory
    assert torch.equal(torch.load(tmp_path / "samples.pt"), samples)
    assert results["metrics"] == metrics
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert sorted(map(int, manifest["batches"])) == list(range(BATCHES))


def test_torn_altered_and_unrecorded_shards_are_regenerated_never_read(tmp_path, uninterrupted):
    evaluate(tmp_path)
    shards = tmp_path / "shards"
    (shards / "batch_000001.pt").write_bytes(b"torn")  # a partial write
    altered = torch.load(shards / "batch_000002.pt")
    altered["tokens"] = torch.zeros_like(altered["tokens"])  # a valid file with other content
    torch.save(altered, shards / "batch_000002.pt")
    (shards / "batch_000003.json").unlink()  # killed between the shard and its record
    (shards / "batch_000004.json").write_text("{")  # a torn record
    for name in ("results.json", "samples.pt"):
        (tmp_path / name).unlink()
    results = evaluate(tmp_path)
    samples, metrics = uninterrupted
    assert torch.equal(torch.load(tmp_path / "samples.pt"), samples)
    assert results["metrics"] == metrics


def test_same_config_and_seed_are_bit_identical_and_a_longer_run_extends_a_shorter_one(
    tmp_path, uninterrupted
):
    samples, metrics = uninterrupted
    again = evaluate(tmp_path / "again")
    assert torch.equal(torch.load(tmp_path / "again" / "samples.pt"), samples) and again["metrics"] == metrics
    evaluate(tmp_path / "shorter", "num_samples=20")  # batches 8, 8, 4
    shorter = torch.load(tmp_path / "shorter" / "samples.pt")
    assert torch.equal(shorter[:16], samples[:16]), "whole batches do not depend on num_samples"
    evaluate(tmp_path / "other_seed", "seed=1")
    assert not torch.equal(torch.load(tmp_path / "other_seed" / "samples.pt"), samples)
