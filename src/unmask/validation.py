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
    ``ConfigError`` naming ``<section>._target_`` if it cannot be imported. A target in a
    package not imported yet is read from its source (``source_parameters``) where it can be:
    validation does not pay Lightning's 2-3 s import."""
    import inspect
    import sys

    from hydra.utils import get_object

    target = node.get("_target_")
    if not isinstance(target, str):
        raise ConfigError(f"{section}._target_ must name a class or function, e.g. {section}=<preset>")
    if target.split(".")[0] not in sys.modules:
        try:
            return source_parameters(target)
        except (LookupError, OSError, SyntaxError, ValueError):
            pass  # import it instead
    try:
        obj = get_object(target)
    except Exception:
        raise ConfigError(f"{section}._target_={target!r} cannot be imported") from None
    params = inspect.signature(obj).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def source_parameters(target: str, hops: int = 4) -> set[str] | None:
    """The keyword parameters of the class or function ``target`` (dotted) read from its source
    with ``ast``, without importing it, following ``from <module> import <name>`` re-exports up to
    ``hops`` modules; ``None`` if it takes ``**kwargs``. ``LookupError`` when the source does not
    say (a class without its own ``__init__``, a name made at import time)."""
    import ast

    module, _, name = target.rpartition(".")
    for _ in range(hops):
        tree = ast.parse(module_source(module).read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                init = [f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"]
                if not init:
                    raise LookupError(f"{target}: no __init__ of its own")
                return keyword_names(init[0].args, skip_self=True)
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return keyword_names(node.args, skip_self=False)
            exported = isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
            if exported and any(a.name == name and a.asname in (None, name) for a in node.names):
                module = node.module
                break
        else:
            raise LookupError(f"{target}: not defined in {module}")
    raise LookupError(f"{target}: more than {hops} re-exports")


def keyword_names(args: Any, skip_self: bool) -> set[str] | None:
    """The names a call may pass by keyword (``None``: any, with ``**kwargs``)."""
    if args.kwarg is not None:
        return None
    named = [a.arg for a in args.args]
    if skip_self and not args.posonlyargs:  # ``self`` is the first positional parameter
        named = named[1:]
    return set(named) | {a.arg for a in args.kwonlyargs}


def module_source(module: str) -> Any:
    """The source file of ``module``, found from its top-level package's location (finding a
    top-level package does not import it)."""
    import importlib.util
    from pathlib import Path

    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise LookupError(f"{module}: not found")
    base = Path(spec.origin).parent.joinpath(*rest)
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    raise LookupError(f"{module}: no source file")


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


def check_seed(key: str, value: Any) -> None:
    """A seed is an integer in [0, ``MAX_SEED``] (32 bits: the range every seeded library takes)."""
    from unmask.seeding import MAX_SEED

    if not is_integer(value) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{key}={value!r} must be an integer in [0, {MAX_SEED}] (2^32 - 1)")


def available_memory() -> int | None:
    """Bytes this process can still allocate: ``MemAvailable`` of ``/proc/meminfo``, lowered to
    the cgroup's limit (a SLURM job, a container) if it has one; ``None`` if neither is known."""
    from pathlib import Path

    found = []
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        found += [int(line.split()[1]) * 1024 for line in lines if line.startswith("MemAvailable:")]
    except (OSError, ValueError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def gib(count: float) -> str:
    return f"{count / 2**30:.3g} GiB"


def check_memory(
    num_samples: int, batch_size: int, seq_len: int, vocab_size: int, accelerator: str = "cpu"
) -> None:
    """Refuse a request whose memory floor exceeds what is free: the samples, held twice at the
    end of a run (the shards and their join, int64 ``[N, L]``), and one batch's logits with the
    one transformed copy every sampler makes (float32 ``[B, L, V]``, on the GPU for ``gpu``).
    A floor, not an estimate: a request refused here cannot run; one let through may still not."""
    samples = 2 * 8 * num_samples * seq_len
    logits = 2 * 4 * min(batch_size, num_samples) * seq_len * vocab_size
    free = available_memory()
    device_free = None
    if accelerator == "gpu":
        import torch

        device_free = torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None
    host = samples + (logits if accelerator != "gpu" else 0)
    if free is not None and host > free:
        key, value = ("num_samples", num_samples) if samples >= logits else ("batch_size", batch_size)
        raise ConfigError(
            f"{key}={value}: needs at least {gib(host)} of memory ({gib(samples)} for the samples, "
            f"{gib(logits if accelerator != 'gpu' else 0)} for a batch's logits; L={seq_len}, "
            f"V={vocab_size}) but {gib(free)} is free here"
        )
    if device_free is not None and logits > device_free:
        raise ConfigError(
            f"batch_size={batch_size}: a batch's logits need at least {gib(logits)} of GPU memory "
            f"(L={seq_len}, V={vocab_size}) but {gib(device_free)} is free; lower batch_size"
        )


def check_training_memory(
    trained: int, held: int, batch_size: int, seq_len: int, logits_width: int, accelerator: str = "cpu"
) -> None:
    """Refuse a training run whose memory floor exceeds what is free: the ``trained`` parameters
    four times over (weights, gradients and Adam's two moments, float32), the ``held`` ones (an
    EMA copy) once, and one batch's logits with their
    gradient (float32 ``[B, L, V]`` twice; ``logits_width`` 0 for a network without token logits),
    on the GPU for ``gpu``. A floor, like ``check_memory``'s: activations come on top."""
    weights = 4 * 4 * trained + 4 * held
    logits = 2 * 4 * batch_size * seq_len * logits_width
    need = weights + logits
    free = available_memory()
    where = "memory"
    if accelerator == "gpu":
        import torch

        free, where = (torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None), "GPU memory"
    if free is not None and need > free:
        key = f"batch_size={batch_size}" if logits > weights else f"net ({trained:,} parameters)"
        raise ConfigError(
            f"{key}: training needs at least {gib(need)} of {where} ({gib(weights)} for the weights, "
            f"their gradients and Adam's moments, {gib(logits)} for a batch's logits and their gradient) "
            f"but {gib(free)} is free here"
        )


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
        from unmask.loggers import wandb_api_key, wandb_mode

        if wandb_mode(logger.get("mode")) == "online" and wandb_api_key() is None:
            raise ConfigError(
                "logger.mode=online but no W&B API key is set (WANDB_API_KEY or `wandb login`): "
                "set one, or use logger.mode=offline and `wandb sync` later"
            )
