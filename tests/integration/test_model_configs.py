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


@pytest.mark.parametrize("name", [m for m in MODELS if m != "hf_mlm"])
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


def test_hf_model_config_requires_a_path():
    cfg = OmegaConf.load(Path(CONF_DIR) / "model" / "hf_mlm.yaml")
    with pytest.raises(Exception, match="path"):
        instantiate(cfg)
