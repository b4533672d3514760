"""Every ``conf/model`` entry instantiates with Hydra into a ready ``Denoiser``."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from unmask.config import CONF_DIR
from unmask.models.checkpoint import available
from unmask.samplers import Denoiser, build

MODELS = sorted(p.stem for p in (Path(CONF_DIR) / "model").glob("*.yaml"))


def needs_files(name: str) -> bool:
    """A config with a mandatory (``???``) key: the path of checkpoint files the user has."""
    cfg = OmegaConf.load(Path(CONF_DIR) / "model" / f"{name}.yaml")
    return any(OmegaConf.is_missing(cfg, key) for key in cfg)


@pytest.mark.parametrize("name", [m for m in MODELS if not needs_files(m)])
def test_model_config_instantiates_a_denoiser_that_samples(name):
    cfg = OmegaConf.load(Path(CONF_DIR) / "model" / f"{name}.yaml")
    if name in ("mnist", "shakespeare") and name not in available():
        pytest.fail(f"shipped checkpoint {name!r} is missing from src/unmask/checkpoints")
    denoiser = instantiate(cfg)
    assert isinstance(denoiser, Denoiser)
    out = build("confidence", steps=min(4, denoiser.seq_len)).sample(
        denoiser, 2, generator=torch.Generator().manual_seed(0)
    )
    assert out.tokens.shape == (2, denoiser.seq_len) and (out.tokens < denoiser.vocab_size).all()


@pytest.mark.parametrize("name", [m for m in MODELS if needs_files(m)])
def test_checkpoint_model_configs_require_their_paths(name):
    cfg = OmegaConf.load(Path(CONF_DIR) / "model" / f"{name}.yaml")
    with pytest.raises(Exception, match="path"):
        instantiate(cfg)


def test_text_model_configs_are_the_ones_needing_a_folder():
    assert {"hf_mlm", "llada", "dream", "mdlm"} <= {m for m in MODELS if needs_files(m)}
