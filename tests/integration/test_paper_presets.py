"""The paper-scale presets (conf/experiment/paper_mage_imagenet, paper_mdlm_owt, llada_gsm8k_style):
they compose with their cluster settings, every point of their sweeps prepares a run (what
``unmask-eval`` validates before any compute) on tiny random checkpoints of the same layout, and
one point runs end to end through the Hydra app on CPU."""

from __future__ import annotations

import itertools
import json

import pytest
from hydra import compose, initialize_config_dir

from hydra_cli import run_in_process
from tiny_maskgit import tiny_overrides, write_files
from unmask.config import CONF_DIR
from unmask.evaluation import prepare

ON_CPU = ["hardware=cpu", "model.device=cpu", "model.dtype=float32"]


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def sweep(preset: str) -> tuple[dict, list[list[str]]]:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=[f"experiment={preset}"], return_hydra_config=True)
    params = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    points = [list(p) for p in itertools.product(*[[f"{k}={v}" for v in vs] for k, vs in params.items()])]
    return cfg, points


def test_paper_mage_imagenet_is_the_papers_setting_on_a_cluster():
    cfg, points = sweep("paper_mage_imagenet")
    assert cfg.model._target_ == "unmask.models.maskgit.MaskGITDenoiser"
    assert (cfg.model.codebook_size, list(cfg.model.grid), cfg.model.dtype) == (1024, [16, 16], "bfloat16")
    assert (cfg.num_samples, cfg.class_label, cfg.hardware.strategy) == (50000, None, "ddp")
    assert cfg.dataset.name == "imagenet" and cfg.dataset.explore == "halton"
    assert len(points) >= 20 and any("sampler=maskgit" in p for p in points)


def test_every_point_of_paper_mage_imagenet_prepares_on_a_tiny_maskgit(tmp_path):
    files = write_files(tmp_path / "ckpt")
    _, points = sweep("paper_mage_imagenet")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for point in points:
            budget = int(point[1].split("=")[1])
            if budget > 16:  # more calls than the tiny model's 16 tokens (the real one has 256)
                continue
            overrides = ["experiment=paper_mage_imagenet", *tiny_overrides(files), *ON_CPU, *point]
            run = prepare(compose("eval", overrides=overrides))
            assert (getattr(run.sampler, "steps", None) or run.sampler.max_steps) == budget, point
            if hasattr(run.sampler, "grid"):
                assert run.sampler.grid == (4, 4), point


def test_paper_mage_imagenet_runs_unconditionally_through_unmask_eval(tmp_path, capsys, monkeypatch):
    from unmask.cli import evaluate

    files = write_files(tmp_path / "ckpt")
    overrides = ["experiment=paper_mage_imagenet", *tiny_overrides(files), *ON_CPU]
    overrides += ["num_samples=4", "batch_size=2", "budget=4"]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["class_label"] is None and results["config"]["figure"]["preset"] == (
        "paper_mage_imagenet"
    )
    assert results["num_samples"] == 4 and (tmp_path / "run" / "samples.png").is_file()


def test_llada_low_confidence_is_the_llada_peer_greedy_in_the_datasets_blocks():
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=["model=shakespeare", "sampler=llada_low_confidence"])
        other = compose("eval", overrides=["model=mnist", "sampler=llada_low_confidence"])
    assert (cfg.sampler.name, cfg.sampler.remasking, cfg.sampler.temperature) == (
        "llada",
        "low_confidence",
        0,
    )
    assert cfg.sampler.block_length == cfg.dataset.llada_block_length
    assert other.sampler.block_length == other.dataset.llada_block_length
