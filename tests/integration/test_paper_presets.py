"""The paper-scale presets (conf/experiment/paper_mage_imagenet, paper_mdlm_owt, llada_gsm8k_style):
they compose with their cluster settings, the points of their sweeps prepare a run (what
``unmask-eval`` validates before any compute) on tiny random checkpoints of the same layout, and
a point runs end to end through the Hydra app on CPU."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hydra_cli import run_in_process
from text_standins import write_standin
from tiny_judge import write_tiny_gpt2_judge
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


def test_paper_mdlm_owt_and_llada_gsm8k_style_hold_their_settings():
    mdlm, mdlm_points = sweep("paper_mdlm_owt")
    assert mdlm.model._target_ == "unmask.models.text.MDLMDenoiser" and mdlm.model.seq_len == 1024
    assert mdlm.num_samples == 1024 and mdlm.metrics.gen_ppl.max_length == 1024
    assert mdlm.metrics.gen_ppl.context == 1024 and OmegaConf.is_missing(mdlm.metrics.gen_ppl, "model")
    assert any("sampler=mdlm" in p for p in mdlm_points) and len(mdlm_points) >= 30
    gsm, gsm_points = sweep("llada_gsm8k_style")
    assert gsm.model._target_ == "unmask.models.text.LLaDADenoiser"
    assert (gsm.model.seq_len, gsm.model.chat_template, gsm.budget) == (256, True, 256)
    assert (gsm.dataset.name, gsm.dataset.llada_block_length, gsm.dataset.conditioning.field) == (
        "prompts",
        32,
        "question",
    )
    assert gsm.sampler.remasking == "low_confidence" and gsm.sampler.block_length == 32
    assert gsm.sampler.temperature == 0 and gsm.num_samples == 1319 and len(gsm_points) == 6


def standin_overrides(family: str, root: Path, seq_len: int) -> list[str]:
    folder = write_standin(root / family, family)
    out = [f"model.path={folder}", f"model.seq_len={seq_len}", *ON_CPU]
    if family == "mdlm":
        out.append(f"model.tokenizer_path={folder.parent / f'{folder.name}_gpt2'}")
    return out


def test_every_point_of_paper_mdlm_owt_prepares_on_a_tiny_mdlm(tmp_path):
    judge = write_tiny_gpt2_judge(tmp_path / "judge", ["a tiny judge of some text"], "<|endoftext|>")
    tiny = [*standin_overrides("mdlm", tmp_path, 16), f"metrics.gen_ppl.model={judge}"]
    _, points = sweep("paper_mdlm_owt")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for point in points:
            budget = int(point[1].split("=")[1])
            if budget > 16:  # more calls than the tiny model's 16 positions (the real one has 1024)
                continue
            overrides = ["experiment=paper_mdlm_owt", *tiny, *point]
            overrides += ["dataset.block_length=8", "dataset.llada_block_length=8"]  # blocks of the tiny 16
            run = prepare(compose("eval", overrides=overrides))
            assert run.domain == "text" and run.config["model"]["seq_len"] == 16, point
            assert run.suite.names == ["gen_ppl", "text_stats"], point


def test_llada_gsm8k_style_runs_through_unmask_eval_with_a_question_file(tmp_path, capsys, monkeypatch):
    from unmask.cli import evaluate

    questions = tmp_path / "questions.jsonl"
    lines = [{"question": "w1 w2 w3", "answer": "w4"}, {"question": "w5", "answer": "w6"}]
    questions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    overrides = ["experiment=llada_gsm8k_style", *standin_overrides("llada", tmp_path, 8)]
    overrides += [
        f"dataset.path={questions}",
        "dataset.block_length=4",
        "dataset.llada_block_length=4",
        "budget=8",
    ]
    overrides += ["num_samples=2", "batch_size=2", "model.chat_template=false"]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 0, err
    records = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [(r["prompt"], r["answer"]) for r in records] == [("w1 w2 w3", "w4"), ("w5", "w6")]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["sampler"]["remasking"] == "low_confidence"
    assert results["config"]["sampler"]["temperature"] == 0 and results["conditioning"]["prompts_used"] == 2
