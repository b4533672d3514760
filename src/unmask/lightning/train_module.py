"""LightningModules that train the built-in denoiser and the VQ tokenizer.

Validation metrics are averaged over all ranks (``sync_dist``): under DDP each rank sees its own
share of the validation batches, and the card records the metric of all of them, the same on every
rank (so every rank takes the same decision on a non-finite one)."""

from __future__ import annotations

import copy
import math
from typing import Any

import lightning as L
import torch

from unmask.lightning.losses import maskgit_loss, mdlm_nelbo
from unmask.models.classifier import MNISTClassifier
from unmask.models.transformer import MaskedTransformer
from unmask.models.vq import VQAutoencoder

OBJECTIVES = ("mdlm", "maskgit")


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class MaskedDiffusionModule(L.LightningModule):
    """Trains a ``MaskedTransformer`` on token sequences (``objective`` = mdlm or maskgit).

    Validation always reports the MDLM NELBO in bits per token (``val/nelbo_bits``), with a fixed
    seed so that numbers are comparable across checkpoints; with ``ema`` set, validation and the
    saved weights use the exponential moving average.
    """

    def __init__(
        self,
        net: dict[str, Any],
        objective: str = "mdlm",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 200,
        total_steps: int = 10_000,
        ema: float | None = None,
    ):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r} must be one of {', '.join(OBJECTIVES)}")
        if ema is not None and not 0 < ema < 1:
            raise ValueError(f"ema={ema!r} must be in (0, 1) or null")
        self.save_hyperparameters()
        self.net = MaskedTransformer(**net)
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False) if ema else None
        self.mask_id = self.net.vocab_size

    def loss(self, net: MaskedTransformer, tokens: torch.Tensor, generator=None) -> torch.Tensor:
        if self.hparams.objective == "mdlm":
            return mdlm_nelbo(net, tokens, self.mask_id, generator).mean()
        return maskgit_loss(net, tokens, self.mask_id, generator)

    def training_step(self, batch, batch_idx):
        loss = self.loss(self.net, batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.ema_net is not None:
            decay = self.hparams.ema
            with torch.no_grad():
                for ema_p, p in zip(self.ema_net.parameters(), self.net.parameters(), strict=True):
                    ema_p.lerp_(p, 1 - decay)

    def evaluation_net(self) -> MaskedTransformer:
        return self.ema_net if self.ema_net is not None else self.net

    def validation_step(self, batch, batch_idx):
        generator = torch.Generator(device=batch.device).manual_seed(1000 + batch_idx)
        nelbo = mdlm_nelbo(self.evaluation_net(), batch, self.mask_id, generator).mean()
        self.log(
            "val/nelbo_bits", nelbo / math.log(2), prog_bar=True, batch_size=batch.shape[0], sync_dist=True
        )

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.net.named_parameters():
            (no_decay if p.dim() < 2 or "embedding" in name else decay).append(p)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.hparams.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.hparams.lr,
            betas=(0.9, 0.98),
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: warmup_cosine(s, self.hparams.warmup_steps, self.hparams.total_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class VQModule(L.LightningModule):
    """Trains the ``VQAutoencoder`` on uint8 images; restarts unused codes every 100 steps."""

    def __init__(
        self, net: dict[str, Any], lr: float = 2e-3, total_steps: int = 2000, warmup_steps: int = 100
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = VQAutoencoder(**net)
        self.register_buffer("usage", torch.zeros(self.net.codebook_size))
        self.generator = torch.Generator().manual_seed(0)

    def training_step(self, batch, batch_idx):
        out = self.net(batch)
        self.usage += torch.bincount(out["codes"].reshape(-1), minlength=self.net.codebook_size).float()
        if (self.global_step + 1) % 100 == 0 and self.global_step < 0.8 * self.hparams.total_steps:
            restarted = self.net.restart_dead_codes(self.usage, out["latents"].cpu(), self.generator)
            self.log("train/restarted_codes", float(restarted))
            self.usage.zero_()
        self.log("train/loss", out["loss"], prog_bar=True)
        self.log("train/mse", out["reconstruction"])
        return out["loss"]

    def validation_step(self, batch, batch_idx):
        out = self.net(batch)
        self.log("val/mse", out["reconstruction"], prog_bar=True, batch_size=batch.shape[0], sync_dist=True)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: warmup_cosine(s, self.hparams.warmup_steps, self.hparams.total_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class ClassifierModule(L.LightningModule):
    """Trains the ``MNISTClassifier`` (cross-entropy; validation accuracy)."""

    def __init__(self, net: dict[str, Any], lr: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        self.net = MNISTClassifier(**net)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        loss = torch.nn.functional.cross_entropy(self.net(images), labels)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        images, labels = batch
        accuracy = (self.net(images).argmax(dim=1) == labels).float().mean()
        self.log("val/accuracy", accuracy, prog_bar=True, batch_size=labels.shape[0], sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
