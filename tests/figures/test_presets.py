"""The figure presets (conf/experiment/fig_*.yaml, quickstart.yaml) and the sampler presets they
sweep (conf/sampler/) compose; every sweep point prepares a run (``unmask.evaluation.prepare``,
what ``unmask-eval`` does before any compute) whose sampler fits its model, spends its call
budget, reads the dataset's geometry and records the preset; the computed figures' presets hold
their settings."""

import itertools

import pytest
import torch
from hydra import compose, initialize_config_dir

from unmask.config import CONF_DIR
from unmask.evaluation import prepare
from unmask.figures import FIGURES

SWEEP_FIGURES = [name for name, module in FIGURES.items() if not module.COMPUTED]


@pytest.mark.parametrize("preset", SWEEP_FIGURES)
def test_every_point_of_a_figure_preset_prepares_a_run_that_spends_its_budget(preset):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        base = compose("eval", overrides=[f"experiment={preset}"], return_hydra_config=True)
        params = {k: str(v).split(",") for k, v in base.hydra.sweeper.params.items()}
        assert params["model"] == ["mnist", "shakespeare"]
        full = len(list(itertools.product(*params.values())))
        for key in ("budget", "sampler.alpha", "sampler.substeps", "seed"):  # the last only (time)
            if key in params:
                params[key] = params[key][-1:]
        points = list(itertools.product(*[[f"{k}={v}" for v in values] for k, values in params.items()]))
        for point in points:
            run = prepare(compose("eval", overrides=[f"experiment={preset}", *point, "metrics=fast"]))
            assert run.config["figure"]["preset"] == preset
            assert run.dataset.name == run.config["model"]["name"], point  # the dataset follows the model
            budget, sampler = run.config["budget"], run.sampler
            assert budget is not None, point
            if run.config["sampler"]["name"] == "semi_ar":  # split over the blocks, at least one call each
                blocks = run.model.seq_len // sampler.block_length
                assert sampler.base_params["steps"] == max(1, budget // blocks), point
            else:
                assert (getattr(sampler, "steps", None) or sampler.max_steps) == budget, point
            if hasattr(sampler, "grid"):
                assert sampler.grid == run.dataset.geometry(run.model), point
        for also in base.figure.get("also") or []:  # the further sweeps (e.g. the model's own law)
            for model in params["model"]:
                run = prepare(compose("eval", overrides=[f"experiment={preset}", f"model={model}", *also]))
                assert run.config["figure"]["preset"] == preset
                if run.config["budget"] == "length":
                    assert run.sampler.steps == run.model.seq_len, (model, also)
    assert full >= 24


def test_hybrid_presets_read_the_datasets_exploration_order_and_grid():
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        image = prepare(compose("eval", overrides=["sampler=hybrid_g25", "model=mnist", "metrics=fast"]))
        text = prepare(compose("eval", overrides=["sampler=hybrid_g25", "model=shakespeare", "metrics=fast"]))
        oracle = prepare(compose("eval", overrides=["sampler=hybrid", "model=oracle_hmm"]))
    assert (image.sampler.explore, image.sampler.grid, image.sampler.gamma) == ("halton", (7, 7), 0.25)
    assert (text.sampler.explore, text.sampler.grid, text.sampler.gamma) == ("random", None, 0.25)
    assert (oracle.sampler.explore, oracle.sampler.grid) == ("random", None)
    assert image.config["sampler"]["grid"] == [7, 7]  # recorded as used


def test_every_sampler_preset_prepares_on_the_default_oracle_with_a_budget():
    from pathlib import Path

    from unmask.samplers.budget import budget_key

    names = sorted(p.stem for p in (Path(CONF_DIR) / "sampler").glob("*.yaml"))
    assert {"hybrid_g0", "hybrid_g25", "hybrid_g75", "moment_cached", "moment_t1", "llada_t1"} <= set(names)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for name in names:
            cfg = compose("eval", overrides=[f"sampler={name}"])
            if budget_key(cfg.sampler.name) is None:
                continue  # fast_dllm stops by its threshold alone; budget=4 is refused (test_bad_input)
            run = prepare(compose("eval", overrides=[f"sampler={name}", "budget=4"]))
            assert run.config["variant"] == cfg.sampler.name  # composed outside a Hydra run: no preset name
            out = run.sampler.sample(run.model, 2, generator=torch.Generator().manual_seed(0))
            assert out.nfe <= max(4, run.model.seq_len // 8), name  # semi_ar: one call per block at least


@pytest.mark.parametrize("preset", [name for name, module in FIGURES.items() if module.COMPUTED])
def test_computed_figure_presets_hold_their_settings(preset):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=[f"experiment={preset}"])
    assert cfg.figure and "seed" in cfg.figure
