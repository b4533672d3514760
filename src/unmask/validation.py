"""Validation of the config groups every entry point shares, before any compute.

Each check raises ``ConfigError`` with a message that starts with the dotted key and says what is
allowed. Samplers validate their own parameters (``unmask.samplers.build``), metrics theirs
(``unmask.metrics.suite``), models when they are built (checkpoint and oracle constructors).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from unmask.checks import is_integer, is_number
from unmask.errors import ConfigError

HARDWARE_KEYS = ("accelerator", "devices", "num_nodes", "strategy", "num_threads", "precision")
ACCELERATORS = ("cpu", "gpu")
STRATEGIES = ("auto", "ddp", "ddp_spawn")
PRECISIONS = ("32-true", "64-true", "16-mixed", "bf16-mixed", "bf16-true")
WANDB_TARGET = "unmask.loggers.wandb_logger"
WANDB_MODES = (None, "online", "offline", "disabled")
HYDRA_KEYS = ("_target_", "_convert_", "_recursive_", "_partial_", "_args_")


def target_parameters(section: str, node: dict[str, Any]) -> set[str] | None:
    """The keyword parameters of ``node``'s ``_target_`` (``None``: it takes any), or a
    ``ConfigError`` naming ``<section>._target_`` if it cannot be imported."""
    import inspect

    from hydra.utils import get_object

    target = node.get("_target_")
    if not isinstance(target, str):
        raise ConfigError(f"{section}._target_ must name a class or function, e.g. {section}=<preset>")
    try:
        obj = get_object(target)
    except Exception:
        raise ConfigError(f"{section}._target_={target!r} cannot be imported") from None
    params = inspect.signature(obj).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def check_target(section: str, node: dict[str, Any], own: Iterable[str] = (), runtime: Iterable[str] = ()):
    """``node`` is a ``_target_`` config whose keys are its target's parameters (or ``own`` keys
    that this project reads itself); ``runtime`` parameters are set by the entry point."""
    allowed = target_parameters(section, node)
    if allowed is not None:
        check_keys(section, node, (allowed - set(runtime)) | set(own) | set(HYDRA_KEYS))


def check_keys(section: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        where = f"{section}." if section else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")


def check_int(key: str, value: Any, minimum: int) -> None:
    if not is_integer(value) or value < minimum:
        raise ConfigError(f"{key}={value!r} must be an integer >= {minimum}")


def check_number(key: str, value: Any, *, positive: bool = True) -> None:
    if not is_number(value) or (positive and not value > 0):
        raise ConfigError(f"{key}={value!r} must be a {'positive ' if positive else ''}number")


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    if value not in tuple(choices):
        raise ConfigError(f"{key}={value!r} must be one of {', '.join(map(str, choices))}")


def check_hardware(hardware: dict[str, Any], runtime: Iterable[str] = ()) -> None:
    """Keys, types and what exists here: GPUs for ``gpu``, CPU cores for CPU processes. Keys
    beyond the usual ones are passed to the ``_target_`` (a Lightning ``Trainer``) and must be its
    parameters; ``runtime`` are those the entry point sets itself."""
    import torch

    check_target("hardware", hardware, own=("num_threads",), runtime=runtime)
    for key in HARDWARE_KEYS:
        if key not in hardware:
            raise ConfigError(f"hardware.{key}: missing (a hardware config sets {', '.join(HARDWARE_KEYS)})")
    check_choice("hardware.accelerator", hardware.get("accelerator"), ACCELERATORS)
    check_int("hardware.devices", hardware.get("devices"), 1)
    check_int("hardware.num_nodes", hardware.get("num_nodes"), 1)
    check_choice("hardware.strategy", hardware.get("strategy"), STRATEGIES)
    check_choice("hardware.precision", str(hardware.get("precision")), PRECISIONS)
    if hardware.get("num_threads") is not None:
        check_int("hardware.num_threads", hardware["num_threads"], 1)
    devices, in_slurm = hardware["devices"], "SLURM_JOB_ID" in os.environ
    if hardware["accelerator"] == "gpu":
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if visible == 0:
            raise ConfigError(
                "hardware.accelerator=gpu but no GPU is visible; use hardware=cpu or hardware=ddp"
            )
        if devices > visible and not in_slurm:
            raise ConfigError(f"hardware.devices={devices} but {visible} GPU(s) are visible")
    elif devices > (os.cpu_count() or 1) and not in_slurm:
        raise ConfigError(
            f"hardware.devices={devices} CPU processes but this machine has {os.cpu_count()} cores"
        )
    launched = in_slurm or "TORCHELASTIC_RUN_ID" in os.environ or "NODE_RANK" in os.environ
    if hardware["num_nodes"] > 1 and not launched:
        raise ConfigError(
            f"hardware.num_nodes={hardware['num_nodes']} needs a multi-node launch (a SLURM job: "
            "hydra/launcher=slurm, or torchrun); here the processes would wait forever for other nodes"
        )
    if devices > 1 and hardware["strategy"] == "auto":
        raise ConfigError(f"hardware.devices={devices} needs hardware.strategy=ddp (or ddp_spawn)")


def check_logger(logger: dict[str, Any]) -> None:
    """``{}`` (logger=none) or a ``_target_`` config of a Lightning logger (``save_dir`` is the
    run directory, set by the entry point); the W&B one's mode, tags and project."""
    if not logger:
        return
    check_target("logger", logger, runtime=("save_dir",))
    if logger["_target_"] == WANDB_TARGET:
        check_choice("logger.mode", logger.get("mode"), WANDB_MODES)
        if not isinstance(logger.get("tags"), list):
            raise ConfigError(f"logger.tags={logger.get('tags')!r} must be a list")
        if not logger.get("project"):
            raise ConfigError("logger.project must be set for logger=wandb")
