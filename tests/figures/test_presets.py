"""The figure presets (conf/experiment/fig_*.yaml, quickstart.yaml) and the methods they sweep
(conf/method/) compose; every sweep point builds a sampler that fits its model, spends its step
budget, and records the preset; the computed figures' presets hold their settings."""

import itertools

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from unmask.config import CONF_DIR
from unmask.figures import FIGURES
from unmask.models.pretrained import load_denoiser

SWEEP_FIGURES = [name for name, module in FIGURES.items() if not module.COMPUTED]


@pytest.fixture(scope="module")
def models():
    return {name: load_denoiser(name) for name in ("mnist", "shakespeare")}


@pytest.mark.parametrize("preset", SWEEP_FIGURES)
def test_every_point_of_a_figure_preset_builds_a_sampler_fitting_its_model(preset, models):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        base = compose("eval", overrides=[f"experiment={preset}"], return_hydra_config=True)
        params = {k: str(v).split(",") for k, v in base.hydra.sweeper.params.items()}
        assert params["model"] == ["mnist", "shakespeare"]
        full = len(list(itertools.product(*params.values())))
        for key in (
            "figure.steps",
            "sampler.steps",
            "sampler.alpha",
            "sampler.substeps",
        ):  # the largest only (time)
            if key in params:
                params[key] = params[key][-1:]
        points = list(itertools.product(*[[f"{k}={v}" for v in values] for k, values in params.items()]))
        for point in points:
            cfg = compose("eval", overrides=[f"experiment={preset}", *point])
            assert cfg.figure.preset == preset
            sampler = instantiate(cfg.sampler)
            sampler.check_denoiser(models[cfg.model.name])
            if "figure.steps" in params:  # a method sweep: the budget reaches the sampler
                if cfg.sampler.name == "semi_ar":  # split over the blocks, at least one call each
                    blocks = models[cfg.model.name].seq_len // sampler.block_length
                    assert sampler.base_params["steps"] == max(1, cfg.figure.steps // blocks), point
                else:
                    assert (getattr(sampler, "steps", None) or sampler.max_steps) == cfg.figure.steps, point
    assert full >= 24


def test_hybrid_methods_explore_by_model():
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        image = instantiate(
            compose("eval", overrides=["experiment=fig_hybrid", "method=hybrid", "model=mnist"]).sampler
        )
        text = instantiate(
            compose("eval", overrides=["experiment=fig_hybrid", "method=hybrid", "model=shakespeare"]).sampler
        )
        alone = instantiate(compose("eval", overrides=["+method=hybrid"]).sampler)  # no preset: 1-D Halton
    assert (image.explore, image.grid) == ("halton", (7, 7))
    assert (text.explore, text.grid) == ("random", None)
    assert (alone.explore, alone.grid) == ("halton", None)


@pytest.mark.parametrize("preset", [name for name, module in FIGURES.items() if module.COMPUTED])
def test_computed_figure_presets_hold_their_settings(preset):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=[f"experiment={preset}"])
    assert cfg.figure and "seed" in cfg.figure
