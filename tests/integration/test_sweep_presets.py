"""The sweep presets (conf/experiment/) and launcher profiles compose, and every sweep point
prepares a run (its sampler fits the model), without running anything."""

import itertools

import pytest
from hydra import compose, initialize_config_dir

from unmask.config import CONF_DIR
from unmask.evaluation import prepare


def sweep_points(params: dict[str, str]) -> list[list[str]]:
    axes = [[f"{key}={value}" for value in str(values).split(",")] for key, values in params.items()]
    return [list(point) for point in itertools.product(*axes)]


@pytest.mark.parametrize("preset", ["sweep_steps", "sweep_temperature", "sweep_hybrid"])
def test_every_point_of_a_sweep_preset_builds_a_sampler_fitting_its_model(preset):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        base = compose("eval", overrides=[f"experiment={preset}"], return_hydra_config=True)
        params = dict(base.hydra.sweeper.params)
        assert len(params) >= 2, "a preset sweeps at least two axes"
        points = sweep_points(params)
        for point in points:
            prepare(compose("eval", overrides=[f"experiment={preset}", *point, "metrics=fast"]))
    assert len(points) >= 12


@pytest.mark.parametrize("profile", ["slurm", "slurm_local", "local"])
def test_launcher_profiles_compose_with_their_keys(profile):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=[f"hydra/launcher={profile}"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher.timeout_min > 0 and launcher.tasks_per_node >= 1
    if profile == "slurm":
        assert launcher.tasks_per_node == launcher.gpus_per_node, "one task per GPU"
        assert launcher.max_num_timeout > 0 and launcher.signal_delay_s > 0
    if profile == "slurm_local":
        assert launcher.gpus_per_node is None and launcher.cpus_per_task * launcher.tasks_per_node <= 2
