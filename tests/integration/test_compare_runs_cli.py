"""``unmask-compare-runs`` on real sweeps: an MNIST steps x sampler sweep with two seeds and a
hybrid gamma sweep, run through ``unmask-eval -m`` with W&B offline. The table from the
``results.json`` files equals the one from the offline W&B runs; runs that differ in an
ungrouped key (gamma) are refused, never averaged; the W&B runs carry readable names, the sweep
as group, and tags."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from hydra_cli import ROOT, run_cli

pytestmark = pytest.mark.subprocess
SMALL = ["model=mnist", "num_samples=16", "batch_size=16", "metrics=fast", "logger=wandb"]
ENV = {"WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    axes = {"steps": ["sampler=maskgit,moment", "budget=2,4", "seed=0,1"]}
    axes["gamma"] = ["sampler=hybrid", "sampler.gamma=0,0.5,1", "budget=4"]
    for name, sweep in axes.items():
        done = run_cli("unmask.cli.evaluate", root / "sweeps" / name, *SMALL, *sweep, env=ENV, multirun=True)
        assert done.returncode == 0, done.stderr[-3000:]
    return root / "sweeps"


def compare_runs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "unmask.cli.compare_runs", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**ENV, "PATH": "/usr/bin:/bin"},
    )


def rows(folder) -> list[dict]:
    return list(csv.DictReader((folder / "comparison.csv").read_text().splitlines()))


def test_two_sweeps_compared_offline_from_results_and_from_wandb_give_one_table(sweeps, tmp_path):
    from_results = compare_runs(
        str(sweeps / "steps"), "--y", "fid_mnist", "label_entropy_bits", "--out", str(tmp_path / "a")
    )
    assert from_results.returncode == 0, from_results.stderr
    table = rows(tmp_path / "a")
    assert [(r["variant"], r["budget"], r["runs"]) for r in table] == [
        ("maskgit", "2", "2"),
        ("maskgit", "4", "2"),
        ("moment", "2", "2"),
        ("moment", "4", "2"),
    ]
    assert all(
        r["fid_mnist_ci95_low"] and float(r["fid_mnist_ci95_low"]) < float(r["fid_mnist"]) for r in table
    )
    from_wandb = compare_runs(
        str(sweeps / "steps"),
        "--from",
        "wandb",
        "--y",
        "fid_mnist",
        "label_entropy_bits",
        "--out",
        str(tmp_path / "b"),
    )
    assert from_wandb.returncode == 0, from_wandb.stderr
    assert rows(tmp_path / "b") == table
    gamma = compare_runs(
        str(sweeps / "gamma"),
        "--group",
        "variant",
        "--x",
        "sampler.gamma",
        "--y",
        "fid_mnist",
        "--out",
        str(tmp_path / "c"),
    )
    assert gamma.returncode == 0, gamma.stderr
    assert [r["sampler.gamma"] for r in rows(tmp_path / "c")] == ["0", "0.5", "1"]
    assert (tmp_path / "c" / "comparison.png").stat().st_size > 0


def test_runs_differing_in_an_ungrouped_key_are_listed_not_averaged(sweeps, tmp_path):
    mixed = compare_runs(str(sweeps / "gamma"), "--y", "fid_mnist", "--out", str(tmp_path / "d"))
    assert mixed.returncode == 2
    assert "differ in sampler.gamma=0 vs 0.5" in mixed.stderr and "group by sampler.gamma" in mixed.stderr
    assert not (tmp_path / "d" / "comparison.csv").exists()


def test_wandb_runs_are_named_grouped_by_sweep_and_tagged(sweeps):
    wandb = [str(p) for p in (sweeps / "steps").glob("*/wandb/offline-run-*")]
    assert (
        len(wandb) == 8 and len(list((sweeps / "steps").glob("*/results.json"))) == 8
    )  # one of each per job
    exe = str(ROOT / ".venv" / "bin" / "wandb") if (ROOT / ".venv" / "bin" / "wandb").exists() else "wandb"
    names, tags = set(), set()
    for run in wandb:
        out = subprocess.run(
            [exe, "leet", "inspect", "--summary", "--json", run],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        record = json.loads(out.stdout)
        assert record["state"] == "finished"
        names.add(record["name"])
        tags |= set(record["tags"])
        assert record["config"]["sampler"]["name"] in ("maskgit", "moment")
        assert set(record["config"]["swept"]) >= {"sampler", "budget", "seed"}
        assert record["config"]["budget"] in (2, 4) and record["config"]["seed"] in (0, 1)
    assert "moment-T4-mnist-seed1" in names and len(names) == 8
    assert {"mnist", "moment", "maskgit"} <= tags
