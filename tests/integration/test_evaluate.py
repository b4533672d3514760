"""``unmask-eval`` for real: Hydra app in a subprocess, Lightning DDP with 2 CPU processes (gloo),
W&B offline read back from its log, bad input rejected before compute."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hydra_cli import run_cli

SMALL = ["num_samples=40", "batch_size=16"]  # 3 batches, the last one partial


def run_eval(run_dir: Path, *overrides: str, env: dict | None = None, multirun: bool = False):
    threads = {"OMP_NUM_THREADS": "1", **(env or {})}
    return run_cli("unmask.cli.evaluate", run_dir, *overrides, env=threads, multirun=multirun)


def test_two_ddp_processes_give_bit_identical_samples_and_metrics_to_one(tmp_path):
    # the shipped MNIST model: classifier features are computed per batch on the rank that made it
    setup = [*SMALL, "model=mnist", "sampler=maskgit", "metrics=fast"]
    one = run_eval(tmp_path / "one", *setup)
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_eval(tmp_path / "two", *setup, "hardware=ddp")
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = torch.load(tmp_path / "one" / "samples.pt"), torch.load(tmp_path / "two" / "samples.pt")
    assert a.shape == (40, 49) and torch.equal(a, b)
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert results["status"] == "complete" and results["hardware"]["world_size"] == 2
    assert results["num_samples"] == 40, "no padding duplicates"
    single = json.loads((tmp_path / "one" / "results.json").read_text())
    estimates = {"fid_mnist", "fid_mnist_data_same_n", "label_entropy_bits"}
    intervals = {f"{m}_{kind}" for m in estimates for kind in ("stderr", "ci95")}
    assert set(results["metrics"]) == estimates | intervals
    assert results["metrics"] == single["metrics"], "the bootstrap too: it sees the joined samples"
    ranks = {torch.load(p)["rank"] for p in (tmp_path / "two" / "shards").glob("batch_*.pt")}
    assert ranks == {0, 1}, "both processes generated (and featurised) batches"


def flat(metrics: dict) -> dict:
    """The metrics as logged: an interval ``m_ci95 = [low, high]`` as ``m_ci95_low``, ``m_ci95_high``."""
    out = {}
    for key, value in metrics.items():
        out |= {f"{key}_low": value[0], f"{key}_high": value[1]} if isinstance(value, list) else {key: value}
    return out


def wandb_summary(run_dir: Path) -> dict:
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    wandb = Path(sys.executable).with_name("wandb")
    result = subprocess.run(
        [str(wandb), "leet", "inspect", "--summary", "--json", str(runs[0])],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_wandb_offline_run_holds_the_same_numbers_as_results(tmp_path):
    result = run_eval(tmp_path, *SMALL, "logger=wandb", "logger.tags=[test]", env={"WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "anonymous setting" not in result.stdout + result.stderr  # Lightning's anonymous=None dropped
    results = json.loads((tmp_path / "results.json").read_text())
    logged = wandb_summary(tmp_path)
    assert logged["config"]["variant"] == results["variant"] == "moment"  # one spelling, logged too
    assert logged["state"] == "finished" and logged["project"] == "unmask" and logged["tags"] == ["test"]
    for key, value in flat(results["metrics"]).items():
        assert logged["summary"][f"eval/{key}"] == pytest.approx(value, rel=1e-12)
    for key, value in results["cost"].items():
        assert logged["summary"][f"cost/{key}"] == pytest.approx(value, rel=1e-12)
    assert logged["config"]["sampler"]["name"] == "moment"


# A multirun with logger=wandb gives one finished W&B run and one results.json per job:
# tests/integration/test_compare_runs_cli.py (its sweeps read back through the offline W&B runs).


def test_resume_skips_finished_shards_and_redoes_torn_ones(tmp_path):
    first = run_eval(tmp_path, *SMALL)
    assert first.returncode == 0
    reference = torch.load(tmp_path / "samples.pt")
    shards = sorted((tmp_path / "shards").glob("batch_*.pt"))
    shards[1].write_bytes(b"torn")  # a partial write from a killed job
    shards[2].unlink()
    (tmp_path / "results.json").unlink()
    again = run_eval(tmp_path, *SMALL)
    assert again.returncode == 0, again.stderr[-3000:]
    assert torch.equal(torch.load(tmp_path / "samples.pt"), reference)


# Bad input: tests/reliability/test_bad_input.py (61 malformed invocations, in-process + the
# console script).


def test_unknown_group_option_is_named_by_hydra(tmp_path):
    result = run_eval(tmp_path, "sampler=foo")
    assert result.returncode != 0
    assert "sampler/foo" in result.stderr or "'foo'" in result.stderr


def test_shipped_mnist_model_gives_fid_and_a_sample_grid(tmp_path):
    result = run_eval(tmp_path, "model=mnist", "sampler=moment", "sampler.steps=8", "num_samples=64")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["domain"] == "image"
    assert 0 < results["metrics"]["fid_mnist"] < 1e4
    assert 0 < results["metrics"]["label_entropy_bits"] <= 3.33
    assert (tmp_path / "samples.png").stat().st_size > 1000


def test_shipped_mnist_model_gives_inception_fid_per_batch(tmp_path):
    overrides = ["model=mnist", "sampler.steps=8", "num_samples=12", "batch_size=6"]
    metrics = ["metrics.names=[fid_inception]", "metrics.fid_inception.reference_images=24"]
    metrics.append("metrics.bootstrap.replicates=5")  # each replicate decomposes a 2048 x 2048 matrix
    result = run_eval(tmp_path, *overrides, *metrics)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["metrics"]) == {"fid_inception", "fid_inception_stderr", "fid_inception_ci95"}
    assert 0 < results["metrics"]["fid_inception"] < 1e4 and results["metrics"]["fid_inception_stderr"] > 0
    shard = torch.load(tmp_path / "shards" / "batch_000000.pt")
    assert shard["features"]["fid_inception"].shape == (6, 2048), "pool3 features stored with the batch"


def test_shipped_shakespeare_model_gives_perplexity_with_entropy(tmp_path):
    result = run_eval(
        tmp_path, "model=shakespeare", "sampler=random", "sampler.steps=16", "num_samples=8", "batch_size=4"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["domain"] == "text" and results["metrics"]["unigram_entropy_bits"] > 2
    # metrics=auto on text: the judge LM's perplexity, never without the entropy and distinct-n
    assert 1 < results["metrics"]["gen_ppl"] < 1e5 and results["metrics"]["gen_ppl_judge_tokens"] > 8
    assert {"sample_entropy_bits", "distinct_2"} <= set(results["metrics"])
    # dataset.reference=shakespeare: the judge also scored 8 random 128-character held-out windows
    m = results["metrics"]
    assert 0 < m["gen_bits_per_char_data_same_n"] < m["gen_bits_per_char"], "real text beats the samples"
    assert m["gen_bits_per_char_data_same_n_stderr"] > 0 and m["gen_ppl_data_same_n"] > 1
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 8 and len(json.loads(lines[0])["text"]) == 128


def test_csv_logger_writes_the_numbers_of_results(tmp_path):
    result = run_eval(tmp_path, *SMALL, "logger=csv")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    (row,) = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    for key, value in flat(results["metrics"]).items():
        assert float(row[f"eval/{key}"]) == pytest.approx(value, rel=1e-6)
    assert (tmp_path / "csv" / "hparams.yaml").exists()


def test_guided_run_on_a_class_conditional_oracle_cycles_labels_by_sample_index(tmp_path):
    overrides = ["model=oracle_conditional", "sampler.steps=5", "sampler.cfg_scale=1.5", "class_label=cycle"]
    result = run_eval(tmp_path, *overrides, "num_samples=10", "batch_size=4")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["cost"]["nfe"] == 10, "guidance: two denoiser evaluations per step"
    labels = torch.cat([torch.load(p)["labels"] for p in sorted((tmp_path / "shards").glob("batch_*.pt"))])
    assert labels.tolist() == [i % 3 for i in range(10)]
