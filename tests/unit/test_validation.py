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


def test_training_memory_floor_is_weights_four_times_an_ema_once_and_the_logits_twice(monkeypatch):
    """The floor, in bytes counted by hand: 16 per trained parameter, 4 per held (EMA) one and
    8 per logit of a batch; a request one byte over what is free is refused naming the larger part."""
    import unmask.validation as validation
    from unmask.errors import ConfigError

    trained, held, batch, length, width = 1000, 1000, 4, 8, 10
    floor = 16 * trained + 4 * held + 8 * batch * length * width  # 22560 bytes
    monkeypatch.setattr(validation, "available_memory", lambda: floor)
    validation.check_training_memory(trained, held, batch, length, width)
    monkeypatch.setattr(validation, "available_memory", lambda: floor - 1)
    with pytest.raises(ConfigError, match=r"^net \(1,000 parameters\): training needs"):
        validation.check_training_memory(trained, held, batch, length, width)
    with pytest.raises(ConfigError, match=r"^batch_size=400: training needs"):
        validation.check_training_memory(trained, held, 400, length, width)
