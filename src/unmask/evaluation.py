"""One evaluation run (``unmask-eval``), as a library: a composed config in, ``results.json`` out.

1. ``prepare(cfg)`` validates and builds everything before any compute (each failure a
   ``ConfigError`` naming the key): the model, its dataset (``DatasetSpec.check``), the sampler
   with the call ``budget`` spent (``unmask.samplers.budget``) and the dataset's grid filled in
   where the sampler takes one and has none, the metrics of the model's domain, the trainer's
   hardware and the logger. The sampler config it resolves is the one recorded.
2. ``evaluate(cfg, run_dir)`` runs ``Trainer.predict`` over batch indices with
   ``SamplingEvaluator`` (one shard per batch; a rerun resumes), and on rank 0 joins the shards in
   batch order, computes the metrics, saves the samples, logs to the logger and writes
   ``results.json`` atomically, last.

The record holds the resolved config, ``variant`` (the sampler preset's name, one spelling for
the figures and W&B), ``budget``, the metrics, the cost (``cost_summary``), the hardware, versions
and the run key (``run_key``: what decides the samples).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unmask.checks import is_integer
from unmask.errors import ConfigError, first_line
from unmask.io import git_sha, save_image_grid
from unmask.metrics.suite import MetricSuite, check_options, current_feature, domain_of, select_metrics
from unmask.rundir import (
    Commit,
    check_run_directory,
    clean_leftovers,
    is_rank_zero,
    write_snapshot,
)
from unmask.samplers.budget import LENGTH
from unmask.validation import check_hardware, check_int, check_keys, check_logger, check_memory, check_seed

log = logging.getLogger("unmask.eval")

TOP_LEVEL_KEYS = ("model", "dataset", "sampler", "hardware", "logger", "metrics", "callbacks")
TOP_LEVEL_KEYS += ("budget", "scale", "num_samples", "batch_size", "seed", "variant", "save_samples")
TOP_LEVEL_KEYS += ("class_label", "figure")  # figure: bookkeeping of the figure presets
# Trainer arguments the evaluation fixes (a hardware config may not set them)
FIXED_TRAINER = {
    "logger": False,
    "use_distributed_sampler": False,
    "enable_progress_bar": False,  # SamplingProgress draws batches and sampler steps instead
    "enable_model_summary": False,
    "enable_checkpointing": False,
}


@dataclass(frozen=True)
class PreparedRun:
    """Everything a run needs, validated; ``config`` is the resolved config it records."""

    config: dict[str, Any]
    model: Any
    dataset: Any
    sampler: Any
    domain: str
    suite: MetricSuite
    variant: str
    conditioning: Any = None  # the dataset's, prepared (unmask.data.conditioning), or None


def built(section: str, node: Any, **kwargs: Any) -> Any:
    try:
        return instantiate(node, **kwargs)
    except Exception as err:  # Hydra wraps the constructor's ValueError
        raise ConfigError(f"{section}: {first_line(err)}") from None


def sampler_config(cfg: dict[str, Any], model: Any, dataset: Any) -> dict[str, Any]:
    """The sampler config with the budget spent and the dataset's grid filled in."""
    from unmask.samplers.budget import budget_key, spend_budget

    sampler = dict(cfg["sampler"])
    if cfg.get("budget") is not None:
        if "name" not in sampler:
            raise ConfigError("budget: needs a registered sampler (sampler.name); set budget=null")
        name = sampler.pop("name")
        key = budget_key(name) if name in registered_names() else None
        clash = [o for o in task_overrides() if key and o.split("=", 1)[0].lstrip("+~") == f"sampler.{key}"]
        if clash:
            raise ConfigError(
                f"{clash[0]} and budget={cfg['budget']} both set the call budget: pass one "
                "(budget=null keeps the sampler's own keys)"
            )
        try:
            sampler = {"name": name, **spend_budget(name, sampler, cfg["budget"], model.seq_len)}
        except ValueError as err:
            raise ConfigError(f"budget: {err}") from None
    grid = dataset.geometry(model)
    if "grid" in sampler and sampler["grid"] is None and grid is not None:
        sampler["grid"] = list(grid)
    return sampler


def registered_names() -> set[str]:
    from unmask.samplers import peer_samplers, registered_samplers

    return set(registered_samplers()) | set(peer_samplers())


def task_overrides() -> list[str]:
    """The command line's overrides of this Hydra run (empty outside one)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def sweep_name() -> str | None:
    """The sweep of this Hydra multirun job (its sweep folder below ``outputs/sweeps``, ``/`` as
    ``-``), or ``None`` for a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hydra = HydraConfig.get()
    except ValueError:
        return None
    if hydra.mode != RunMode.MULTIRUN:
        return None
    parts = Path(hydra.sweep.dir).parts
    tail = parts[parts.index("sweeps") + 1 :] if "sweeps" in parts else parts[-2:]
    return "-".join(tail)


def preset_name(group: str) -> str | None:
    """The config chosen for ``group`` in this Hydra run (``sampler=hybrid_g25``), if any."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get().runtime.choices.get(group)
    except ValueError:  # not inside a Hydra run (a composed config)
        return None


def prepare(cfg: DictConfig) -> PreparedRun:
    """Validate and build a run's parts (see the module docstring)."""
    check_keys("", cfg.keys(), TOP_LEVEL_KEYS)
    scales = OmegaConf.select(cfg, "dataset.samples", default=None) or {}
    if cfg.get("scale") not in scales:
        raise ConfigError(
            f"scale={cfg.get('scale')!r} must be one of {', '.join(scales)} (the dataset's samples)"
        )
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:
        raise ConfigError(first_line(err)) from None
    for key in ("num_samples", "batch_size"):
        check_int(key, config.get(key), 1)
    check_seed("seed", config.get("seed"))
    budget = config.get("budget")
    if budget not in (None, LENGTH) and (not is_integer(budget) or budget < 1):
        raise ConfigError(f"budget={budget!r} must be an integer >= 1, or {LENGTH!r} (one call per position)")
    if not isinstance(config.get("save_samples"), bool):
        raise ConfigError(f"save_samples={config.get('save_samples')!r} must be true or false")
    check_hardware(config["hardware"], runtime=(*FIXED_TRAINER, "plugins", "callbacks"))
    check_logger(config["logger"] or {})
    model = built("model", cfg.model)
    check_memory(
        config["num_samples"],
        config["batch_size"],
        model.seq_len,
        model.vocab_size,
        config["hardware"]["accelerator"],
    )
    dataset = built("dataset", cfg.dataset)
    try:
        dataset.check(model)
        conditioning = dataset.prepared_conditioning(model)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    config["sampler"] = sampler_config(config, model, dataset)
    sampler = built("sampler", OmegaConf.create(config["sampler"]))
    try:
        sampler.check_denoiser(model)
    except ValueError as err:
        raise ConfigError(
            f"sampler incompatible with model (L={model.seq_len}, V={model.vocab_size}): {err}"
        ) from None
    check_class_label(config.get("class_label"), model, getattr(sampler, "cfg_scale", 0.0))
    if conditioning is not None and conditioning.kind == "prompts" and config.get("class_label") is not None:
        raise ConfigError(f"class_label={config['class_label']!r}: a prompt dataset's cond is its prompts")
    domain = domain_of(model)
    requested = dict(config["metrics"] or {})
    if "names" not in requested:
        raise ConfigError("metrics: must be a metrics config (metrics=auto|fast|all or metrics.names=[...])")
    names = requested.pop("names")
    try:
        selected = select_metrics(names, domain, model, dataset.reference)
        suite = MetricSuite(selected, check_options(requested), config["seed"], dataset.reference)
        suite.check_data()
    except (ValueError, RuntimeError) as err:
        raise ConfigError(first_line(err)) from None
    variant = config.get("variant") or preset_name("sampler") or config["sampler"].get("name", "sampler")
    config["variant"] = variant
    return PreparedRun(config, model, dataset, sampler, domain, suite, variant, conditioning)


def check_class_label(label: Any, model: Any, cfg_scale: float) -> None:
    """``class_label``: null, ``cycle`` or a class id of a class-conditional model."""
    classes = getattr(model, "num_classes", None)
    if label is not None and not classes:
        raise ConfigError(f"class_label={label!r}, but the model is not class-conditional (no num_classes)")
    if label is not None and label != "cycle":
        check_int("class_label", label, 0)
        if label >= classes:
            raise ConfigError(f"class_label={label} must be < num_classes = {classes} (or cycle, or null)")
    if cfg_scale and label is None:
        raise ConfigError(f"sampler.cfg_scale={cfg_scale} needs class_label=<class id> or class_label=cycle")


def run_key(config: dict[str, Any], model: Any = None, conditioning: Any = None) -> str:
    """sha256 of what decides the samples of batch b: model config and the model's
    ``fingerprint`` (a checkpoint's weights sha256: retrained weights at the same path are another
    run), resolved sampler, seed, batch size, class labels and the conditioning's fingerprint
    (the prompt ids or given tokens: an edited prompt file is another run)."""
    identity = {key: config[key] for key in ("model", "sampler", "seed", "batch_size", "class_label")}
    identity["fingerprint"] = getattr(model, "fingerprint", None)
    if conditioning is not None:
        identity["conditioning"] = conditioning.fingerprint
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]


def gather_features(suite: MetricSuite, model: Any, shards: list[dict]) -> dict[str, torch.Tensor]:
    """Per-batch features in batch order; a shard written without some (an earlier run with
    other metrics) or with an older layout of one (``current_feature``) gets them computed here."""
    out = {}
    for name in suite.per_batch:
        parts = []
        for shard in shards:
            stored = shard.get("features", {})
            if name in stored and current_feature(name, stored[name]):
                parts.append(stored[name])
            else:
                parts.append(suite.batch_features(model, shard["tokens"], [name])[name])
        out[name] = torch.cat(parts)
    return out


def cost_summary(shards: list[dict], wall_seconds: float, metric_seconds: float) -> dict[str, float]:
    """Per-sample means of the denoiser calls (``nfe``) and forward-equivalents (partial refreshes
    counted by their share of positions), and the times: ``wall_seconds`` of the predict loop,
    summed sampling time, metric time, and the span from the first batch started to the last
    written over all ranks (``samples_per_second`` over that span)."""
    count = sum(s["tokens"].shape[0] for s in shards)
    span = max(s["finished"] for s in shards) - min(s["started"] for s in shards)
    return {
        "nfe": sum(s["nfe"] * s["tokens"].shape[0] for s in shards) / count,
        "forward_equivalents": sum(s["cost"] * s["tokens"].shape[0] for s in shards) / count,
        "wall_seconds": wall_seconds,
        "sampling_seconds": sum(s["seconds"] for s in shards),
        "metric_seconds": metric_seconds,
        "generation_span_seconds": span,
        "samples_per_second": count / max(span, 1e-9),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def versions() -> dict[str, str]:
    import hydra
    import lightning

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "hydra": hydra.__version__,
    }


def sample_outputs(
    model: Any,
    domain: str,
    tokens: torch.Tensor,
    conditioning: Any = None,
    source_index: torch.Tensor | None = None,
) -> dict[str, Any]:
    """The sample files of a run, each as a function writing it at a given path:
    ``samples.pt``, plus the first 64 decoded images as ``samples.png`` (any image size the
    model's ``decode`` gives) or every decoded text in ``samples.jsonl`` (with a conditioning,
    each record keeps its prompt or source row: ``conditioning.decoded``)."""
    outputs: dict[str, Any] = {"samples.pt": lambda path: torch.save(tokens, path)}
    if source_index is not None:
        outputs["sources.pt"] = lambda path: torch.save(source_index, path)
    if domain == "image":
        outputs["samples.png"] = lambda path: save_image_grid(model.decode(tokens[:64]), path)
    if domain == "text":
        if conditioning is None:
            records = [{"index": i, "text": t} for i, t in enumerate(model.decode(tokens))]
        else:
            records = conditioning.decoded(tokens, source_index)
        lines = [json.dumps(record) for record in records]
        outputs["samples.jsonl"] = lambda path: path.write_text("\n".join(lines) + "\n")
    return outputs


def evaluate(cfg: DictConfig, run_dir: Path) -> dict | None:
    """Run ``cfg`` into ``run_dir``; the record on rank 0, ``None`` on the other ranks."""
    started = dt.datetime.now(dt.timezone.utc).isoformat()
    run = prepare(cfg)
    config = run.config
    # Lightning is imported only once the configuration is known to be good: bad input fails fast
    from unmask.lightning.eval_module import (
        BatchIndexData,
        SamplingEvaluator,
        conflicting_shards,
        num_batches,
        read_shards,
        write_manifest,
    )
    from unmask.lightning.trainer import build_trainer, interrupts_raised

    callbacks = [built(f"callbacks.{k}", v) for k, v in (cfg.get("callbacks") or {}).items() if v]
    trainer = build_trainer(config["hardware"], callbacks=callbacks, **FIXED_TRAINER)
    count = num_batches(config["num_samples"], config["batch_size"])
    check_run_directory(run_dir)
    shard_dir = run_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    key = run_key(config, run.model, run.conditioning)
    conflicts = conflicting_shards(shard_dir, key)
    if conflicts:
        raise ConfigError(
            f"hydra.run.dir={run_dir} holds shards of another configuration ({conflicts[0].name}, "
            f"{len(conflicts)} in all): use a new run directory or delete {shard_dir}"
        )
    if is_rank_zero():  # the input is valid: the run starts here
        clean_leftovers(run_dir)
        write_snapshot(run_dir, cfg)
    module = SamplingEvaluator(
        run.model,
        run.sampler,
        config["num_samples"],
        config["batch_size"],
        config["seed"],
        shard_dir,
        run.suite,
        key,
        config["class_label"],
        run.conditioning,
    )
    start = time.perf_counter()
    with interrupts_raised():
        trainer.predict(module, datamodule=BatchIndexData(count), return_predictions=False)
    trainer.strategy.barrier()
    if not trainer.is_global_zero:
        return None
    wall = time.perf_counter() - start
    shards = read_shards(shard_dir, count, key)
    write_manifest(shard_dir, count, key)
    tokens = torch.cat([s["tokens"] for s in shards])
    source_index = torch.cat([s["source_index"] for s in shards]) if run.conditioning is not None else None
    metric_start = time.perf_counter()
    metrics = run.suite.reduce(run.model, tokens, gather_features(run.suite, run.model, shards))
    metric_seconds = time.perf_counter() - metric_start + sum(s.get("metric_seconds", 0.0) for s in shards)
    results = {
        "status": "complete",
        "config": config,
        "variant": run.variant,
        "budget": run.model.seq_len if config.get("budget") == LENGTH else config.get("budget"),
        "domain": run.domain,
        "metrics": metrics,
        "cost": cost_summary(shards, wall, metric_seconds),
        "num_samples": int(tokens.shape[0]),
        "conditioning": None if run.conditioning is None else run.conditioning.record(int(tokens.shape[0])),
        "run_key": key,
        "hardware": {
            "accelerator": config["hardware"]["accelerator"],
            "world_size": trainer.world_size,
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        },
        "versions": versions(),
        "git_sha": git_sha(),
        "start_time": started,
    }
    outputs = {}
    if config["save_samples"]:
        outputs = sample_outputs(run.model, run.domain, tokens, run.conditioning, source_index)
    with Commit(run_dir) as out:
        staged = {name: out.stage(name, write) for name, write in outputs.items()}
        out.stage_snapshot(cfg)
        if config["logger"]:
            from unmask.loggers import log_results, run_identity

            identity = run_identity(results, sweep_name(), task_overrides())
            open_keys = {}
            if config["logger"].get("_target_") == "unmask.loggers.wandb_logger":
                open_keys = {k: identity[k] for k in ("name", "group", "tags") if not config["logger"].get(k)}
            logger = built("logger", cfg.logger, save_dir=str(run_dir), **open_keys)
            results |= log_results(logger, results, staged, identity["flat"])
        results["end_time"] = dt.datetime.now(dt.timezone.utc).isoformat()
        results["files"] = list(outputs)
        results["sha256"] = out.finish(results)
    return results
