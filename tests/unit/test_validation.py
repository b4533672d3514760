"""The shared validation layer: parameters read from a target's source (so validation does not
import Lightning) equal the imported signature's, and a bad ``unmask-eval`` input is refused
without Lightning ever being imported."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from unmask.validation import source_parameters

TARGETS = [
    "lightning.pytorch.Trainer",  # re-exported twice: lightning.pytorch -> .trainer -> .trainer.trainer
    "lightning.pytorch.loggers.CSVLogger",
    "unmask.loggers.wandb_logger",
    "unmask.lightning.progress.SamplingProgress",
]


@pytest.mark.parametrize("target", TARGETS)
def test_parameters_read_from_the_source_equal_the_signature(target):
    from hydra.utils import get_object

    try:
        read = source_parameters(target)
    except LookupError:
        pytest.skip(f"{target}: its source does not say (validation imports it)")
    params = inspect.signature(get_object(target)).parameters.values()
    expected = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY)}
    assert read == expected


def test_a_name_the_source_does_not_define_is_a_lookup_error():
    with pytest.raises(LookupError):
        source_parameters("lightning.pytorch.NoSuchTrainer")


def test_a_bad_eval_input_is_refused_without_importing_lightning():
    script = """
import sys
from hydra import compose, initialize_config_dir
from unmask.config import CONF_DIR
from unmask.errors import ConfigError
from unmask.evaluation import prepare
with initialize_config_dir(CONF_DIR, version_base="1.3"):
    cfg = compose("eval", overrides=["sampler.steps=0", "+hardware.max_epochs=1"])
try:
    prepare(cfg)
except ConfigError as err:
    print(err)
print("lightning" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines() == ["sampler: steps=0 must be an integer >= 1", "False"], out.stderr
