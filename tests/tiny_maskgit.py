"""A tiny MaskGIT checkpoint pair in the real file layouts, for tests: the valeoai MaskGIT-pytorch
``{"model_state_dict": ...}`` transformer, taming's Lightning ``{"state_dict": ...}`` VQGAN and its
``model.yaml`` (``write_files``), and the ``unmask-eval`` overrides that size ``model=maskgit_imagenet``
to it (``tiny_overrides``)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from unmask.models.maskgit import MaskTransformerNet, VQGANDecoder

K, C, GRID, HIDDEN, MLP = 16, 3, (4, 4), 32, 64  # codebook, classes, token grid, widths
L = GRID[0] * GRID[1]
SIZES = {"codebook_size": K, "num_classes": C, "grid": GRID, "hidden_dim": HIDDEN, "depth": 1, "heads": 2}
SIZES["mlp_dim"] = MLP
DDCONFIG = {
    "double_z": False,
    "z_channels": 8,
    "resolution": 8,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [4],
    "dropout": 0.0,
}


def randomised(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.3 for k, v in module.state_dict().items()}


def write_files(root: Path, seed: int = 0, config: dict | None = None) -> dict[str, Path]:
    """A tiny transformer checkpoint, VQGAN checkpoint and model.yaml in the real layouts."""
    root.mkdir(parents=True, exist_ok=True)
    net = MaskTransformerNet(K, C, L, HIDDEN, 1, 2, MLP)
    vq = VQGANDecoder(
        K, 8, {k: v for k, v in DDCONFIG.items() if k not in ("double_z", "in_channels", "dropout")}
    )
    paths = {"transformer_path": root / "current.pth", "vqgan_path": root / "last.ckpt"}
    torch.save(
        {"iter": 7, "global_epoch": 1, "model_state_dict": randomised(net, seed), "optimizer_state_dict": {}},
        paths["transformer_path"],
    )
    state = randomised(vq, seed + 1)
    # what decoding does not read: the encoder half, quant_conv, the training loss
    state |= {
        "encoder.conv_in.weight": torch.zeros(32, 3, 3, 3),
        "quant_conv.weight": torch.zeros(8, 8, 1, 1),
    }
    state["loss.discriminator.main.0.weight"] = torch.zeros(4, 3, 4, 4)
    torch.save({"epoch": 3, "global_step": 30, "state_dict": state}, paths["vqgan_path"])
    params = {"embed_dim": 8, "n_embed": K, "ddconfig": dict(DDCONFIG)}
    params["lossconfig"] = {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator"}
    payload = config or {
        "model": {"base_learning_rate": 4.5e-6, "target": "taming.models.vqgan.VQModel", "params": params}
    }
    OmegaConf.save(OmegaConf.create(payload), root / "model.yaml")
    return paths


def tiny_overrides(files: dict[str, Path]) -> list[str]:
    """``unmask-eval`` overrides that load ``files`` as ``model=maskgit_imagenet``."""
    return [
        "model=maskgit_imagenet",
        f"model.transformer_path={files['transformer_path']}",
        f"model.vqgan_path={files['vqgan_path']}",
        f"model.codebook_size={K}",
        f"model.num_classes={C}",
        f"model.grid=[{GRID[0]},{GRID[1]}]",
        f"model.hidden_dim={HIDDEN}",
        "model.depth=1",
        "model.heads=2",
        f"model.mlp_dim={MLP}",
        f"dataset.grid=[{GRID[0]},{GRID[1]}]",
        f"dataset.block_length={GRID[1]}",
    ]
