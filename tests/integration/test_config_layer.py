"""The config layer for real: a sampler variant and a dataset are one YAML file each in a user's
own config dir (README, "Configs"); a run records its variant and the budget it spent; trainer,
logger and callbacks come from their ``_target_`` configs."""

import json
import subprocess
import sys

from hydra_cli import ROOT, run_cli

VARIANT = "defaults: [hybrid, _self_]\ngamma: 0.1\n"
DATASET = (
    "defaults: [shakespeare, _self_]\nname: short_blocks\nblock_length: 16\n"
    "samples: {quick: {num_samples: 8, batch_size: 8}, cpu: {num_samples: 6, batch_size: 3}}\n"
)


def test_a_sampler_variant_and_a_dataset_are_one_yaml_file_each(tmp_path):
    conf = tmp_path / "my_conf"
    (conf / "sampler").mkdir(parents=True)
    (conf / "dataset").mkdir()
    (conf / "sampler" / "hybrid_g10.yaml").write_text(VARIANT)
    (conf / "dataset" / "short_blocks.yaml").write_text(DATASET)
    common = ["model=shakespeare", "dataset=short_blocks", "budget=8", "metrics=fast", "logger=csv"]
    command = [sys.executable, "-m", "unmask.cli.evaluate", "--config-dir", str(conf), "-m", *common]
    command += ["sampler=hybrid_g10,semi_ar", f"hydra.sweep.dir={tmp_path / 'runs'}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = {}
    for path in (tmp_path / "runs").glob("*/results.json"):
        record = json.loads(path.read_text())
        records[record["variant"]] = record
        assert (path.parent / "csv" / "metrics.csv").exists()  # the logger from its _target_ config
    hybrid, semi_ar = records["hybrid_g10"], records["semi_ar"]
    # the variant inherits the shipped hybrid preset, the dataset its explore order and sample counts
    assert hybrid["config"]["sampler"]["gamma"] == 0.1 and hybrid["config"]["sampler"]["explore"] == "random"
    assert hybrid["num_samples"] == 6 and hybrid["budget"] == 8 and hybrid["config"]["sampler"]["steps"] == 8
    assert hybrid["cost"]["nfe"] == 8
    # semi_ar: the dataset's blocks of 16 (8 blocks on L = 128), one call per block at a budget of 8
    assert semi_ar["config"]["sampler"]["block_length"] == 16
    assert semi_ar["config"]["sampler"]["base_params"]["steps"] == 1 and semi_ar["cost"]["nfe"] == 8
    assert semi_ar["config"]["dataset"]["name"] == "short_blocks"


def test_the_dataset_follows_the_model_and_its_grid_reaches_the_sampler(tmp_path):
    result = run_cli(
        "unmask.cli.evaluate",
        tmp_path,
        "model=mnist",
        "sampler=halton",
        "budget=4",
        "num_samples=4",
        "batch_size=4",
        "metrics=fast",
        "+hardware.deterministic=true",  # any Trainer keyword passes through the hardware config
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["config"]["dataset"]["name"] == "mnist" and record["variant"] == "halton"
    assert record["config"]["sampler"]["grid"] == [7, 7]
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
