"""Validation of the config groups every entry point shares, before any compute.

Each check raises ``ConfigError`` with a message that starts with the dotted key and says what is
allowed. Samplers validate their own parameters (``unmask.samplers.build``), metrics theirs
(``unmask.metrics.suite``), models when they are built (checkpoint and oracle constructors).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from unmask.cli.errors import ConfigError

HARDWARE_KEYS = ("accelerator", "devices", "num_nodes", "strategy", "num_threads", "precision")
ACCELERATORS = ("cpu", "gpu")
STRATEGIES = ("auto", "ddp", "ddp_spawn")
PRECISIONS = ("32-true", "64-true", "16-mixed", "bf16-mixed", "bf16-true")
LOGGER_KEYS = {
    "none": ("kind",),
    "csv": ("kind",),
    "wandb": ("kind", "project", "entity", "group", "tags", "job_type", "mode"),
}
WANDB_MODES = (None, "online", "offline", "disabled")


def check_keys(section: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        where = f"{section}." if section else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")


def check_int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}={value!r} must be an integer >= {minimum}")


def check_number(key: str, value: Any, *, positive: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and not value > 0):
        raise ConfigError(f"{key}={value!r} must be a {'positive ' if positive else ''}number")


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    if value not in tuple(choices):
        raise ConfigError(f"{key}={value!r} must be one of {', '.join(map(str, choices))}")


def check_hardware(hardware: dict[str, Any]) -> None:
    """Keys, types and what exists here: GPUs for ``gpu``, CPU cores for CPU processes."""
    import torch

    check_keys("hardware", hardware, HARDWARE_KEYS)
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
    if devices > 1 and hardware["strategy"] == "auto":
        raise ConfigError(f"hardware.devices={devices} needs hardware.strategy=ddp (or ddp_spawn)")


def check_logger(logger: dict[str, Any]) -> None:
    kind = logger.get("kind")
    check_choice("logger.kind", kind, LOGGER_KEYS)
    check_keys("logger", logger, LOGGER_KEYS[kind])
    if kind == "wandb":
        check_choice("logger.mode", logger.get("mode"), WANDB_MODES)
        if not isinstance(logger.get("tags"), list):
            raise ConfigError(f"logger.tags={logger.get('tags')!r} must be a list")
        if not logger.get("project"):
            raise ConfigError("logger.project must be set for logger=wandb")
