"""``unmask-eval``: one evaluation = model x sampler x hardware, composed by Hydra.

Flow: validate the whole config (before any process group or compute) -> ``Trainer.predict``
over batch indices with ``SamplingEvaluator`` (shards on disk, one per batch) -> on rank 0:
join the shards in batch order, compute the metrics of the model's domain, write
``results.json`` (atomically, last), the samples (``samples.pt``, plus ``samples.png`` for
images or ``samples.jsonl`` for text) and log the same numbers to W&B (``logger=wandb``).
Bad input exits with status 2 and one line naming the key (``HYDRA_FULL_ERROR=1`` for a trace).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unmask.cli.errors import ConfigError, first_line, run_reporting_errors
from unmask.cli.validate import check_hardware, check_int, check_keys, check_logger
from unmask.config import CONF_DIR
from unmask.io import git_sha, write_json_atomic
from unmask.metrics.suite import MetricSuite, check_options, domain_of, select_metrics

log = logging.getLogger("unmask.eval")


TOP_LEVEL_KEYS = ("model", "sampler", "hardware", "logger", "metrics", "num_samples", "batch_size", "seed")
TOP_LEVEL_KEYS += ("save_samples", "class_label", "figure")  # figure: bookkeeping of fig_* presets


def build_run(cfg: DictConfig) -> tuple[Any, Any, str, MetricSuite]:
    """Validate and instantiate; every failure is a ``ConfigError`` naming the key."""
    check_keys("", cfg.keys(), TOP_LEVEL_KEYS)
    for key in ("num_samples", "batch_size"):
        check_int(key, cfg.get(key), 1)
    check_int("seed", cfg.get("seed"), 0)
    if not isinstance(cfg.get("save_samples"), bool):
        raise ConfigError(f"save_samples={cfg.get('save_samples')!r} must be true or false")
    check_hardware(OmegaConf.to_container(cfg.hardware, resolve=True))
    check_logger(OmegaConf.to_container(cfg.logger, resolve=True))
    try:
        sampler = instantiate(cfg.sampler)
    except Exception as err:  # Hydra wraps the ValueError of the builder
        raise ConfigError(f"sampler: {first_line(err)}") from None
    try:
        model = instantiate(cfg.model)
    except Exception as err:
        raise ConfigError(f"model: {first_line(err)}") from None
    try:
        sampler.check_denoiser(model)
    except ValueError as err:
        raise ConfigError(
            f"sampler incompatible with model (L={model.seq_len}, V={model.vocab_size}): {err}"
        ) from None
    check_class_label(cfg.get("class_label"), model, getattr(sampler, "cfg_scale", 0.0))
    domain = domain_of(model)
    requested = OmegaConf.to_container(cfg.metrics, resolve=True)
    if not isinstance(requested, dict) or "names" not in requested:
        raise ConfigError("metrics: must be a metrics config (metrics=auto|fast|all or metrics.names=[...])")
    names = requested.pop("names")
    try:
        suite = MetricSuite(select_metrics(names, domain, model), check_options(requested), cfg.seed)
        suite.check_data()
    except (ValueError, RuntimeError) as err:
        raise ConfigError(first_line(err)) from None
    return model, sampler, domain, suite


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


def run_key(cfg: DictConfig) -> str:
    """sha256 of what decides the samples of batch b: model, sampler, seed and batch size."""
    identity = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "sampler")}
    identity |= {"seed": cfg.seed, "batch_size": cfg.batch_size, "class_label": cfg.class_label}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def gather_features(suite: MetricSuite, model: Any, shards: list[dict]) -> dict[str, torch.Tensor]:
    """Per-batch features in batch order; a shard written without some (an earlier run with
    other metrics) gets them computed here."""
    out = {}
    for name in suite.per_batch:
        parts = []
        for shard in shards:
            stored = shard.get("features", {})
            parts.append(
                stored[name] if name in stored else suite.batch_features(model, shard["tokens"], [name])[name]
            )
        out[name] = torch.cat(parts)
    return out


def versions() -> dict[str, str]:
    import hydra as hydra_module
    import lightning as L

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "hydra": hydra_module.__version__,
    }


def save_samples(run_dir: Path, model: Any, domain: str, tokens: torch.Tensor) -> list[str]:
    written = ["samples.pt"]
    tmp = run_dir / "samples.pt.tmp"
    torch.save(tokens, tmp)
    os.replace(tmp, run_dir / "samples.pt")
    if domain == "image":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        images = model.decode(tokens[:64])
        cols = 8
        rows = -(-images.shape[0] // cols)
        grid = torch.ones(rows * 29, cols * 29)
        for i, image in enumerate(images):
            r, c = divmod(i, cols)
            grid[r * 29 : r * 29 + 28, c * 29 : c * 29 + 28] = image
        plt.imsave(run_dir / "samples.tmp.png", grid.numpy(), cmap="gray", vmin=0, vmax=1)
        os.replace(run_dir / "samples.tmp.png", run_dir / "samples.png")
        written.append("samples.png")
    if domain == "text":
        lines = [json.dumps({"index": i, "text": t}) for i, t in enumerate(model.decode(tokens))]
        (run_dir / "samples.jsonl.tmp").write_text("\n".join(lines) + "\n")
        os.replace(run_dir / "samples.jsonl.tmp", run_dir / "samples.jsonl")
        written.append("samples.jsonl")
    return written


def wandb_logger(cfg: DictConfig, run_dir: Path):
    from lightning.pytorch.loggers import WandbLogger

    mode = (
        cfg.logger.mode
        or os.environ.get("WANDB_MODE")
        or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    )
    return WandbLogger(
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        group=cfg.logger.group,
        tags=list(cfg.logger.tags),
        job_type=cfg.logger.job_type,
        save_dir=str(run_dir),
        mode=mode,
    )


def log_to_csv(run_dir: Path, results: dict) -> None:
    """Lightning's CSVLogger: ``csv/hparams.yaml`` and ``csv/metrics.csv`` (eval/..., cost/...)."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(str(run_dir), name="csv", version="")
    logger.log_hyperparams(results["config"])
    logger.log_metrics(
        {f"eval/{k}": v for k, v in results["metrics"].items()}
        | {f"cost/{k}": v for k, v in results["cost"].items()}
    )
    logger.save()


def log_to_wandb(cfg: DictConfig, run_dir: Path, results: dict, files: list[str], model: Any) -> None:
    logger = wandb_logger(cfg, run_dir)
    try:
        logger.log_hyperparams(results["config"])
        logger.log_metrics(
            {f"eval/{k}": v for k, v in results["metrics"].items()}
            | {f"cost/{k}": v for k, v in results["cost"].items()}
        )
        if "samples.png" in files:
            logger.log_image(key="samples", images=[str(run_dir / "samples.png")])
        if "samples.jsonl" in files:
            texts = [
                json.loads(line)["text"] for line in (run_dir / "samples.jsonl").read_text().splitlines()[:32]
            ]
            logger.log_text(key="samples", columns=["text"], data=[[t] for t in texts])
        results["wandb"] = {
            "mode": logger.experiment.settings.mode,
            "run_id": logger.experiment.id,
            "dir": str(logger.experiment.dir),
        }
    finally:
        import wandb

        wandb.finish()


def evaluate(cfg: DictConfig, run_dir: Path) -> dict | None:
    started = dt.datetime.now(dt.timezone.utc).isoformat()
    model, sampler, domain, suite = build_run(cfg)
    # Lightning is imported only once the configuration is known to be good: bad input fails fast
    import lightning as L
    from torch.utils.data import DataLoader

    from unmask.lightning.eval_module import (
        BatchIndices,
        RankBatches,
        SamplingEvaluator,
        conflicting_shards,
        num_batches,
        read_shards,
        write_manifest,
    )

    if cfg.hardware.num_threads:
        torch.set_num_threads(cfg.hardware.num_threads)
    count = num_batches(cfg.num_samples, cfg.batch_size)
    shard_dir = run_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    key = run_key(cfg)
    conflicts = conflicting_shards(shard_dir, key)
    if conflicts:
        raise ConfigError(
            f"hydra.run.dir={run_dir} holds shards of another configuration ({conflicts[0].name}, "
            f"{len(conflicts)} in all): use a new run directory or delete {shard_dir}"
        )
    module = SamplingEvaluator(
        model, sampler, cfg.num_samples, cfg.batch_size, cfg.seed, shard_dir, suite, key, cfg.class_label
    )
    interactive = sys.stderr.isatty() and not os.environ.get("CI")
    callbacks = []
    if interactive:
        from unmask.lightning.progress import SamplingProgress

        callbacks.append(SamplingProgress(getattr(sampler, "steps", None)))
    plugins = []
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect():
        # inside a SLURM job: ranks from SLURM's tasks; requeueing is submitit's job (it resumes
        # from the shards), so Lightning must not requeue on its own signal
        plugins.append(SLURMEnvironment(auto_requeue=False))
    trainer = L.Trainer(
        plugins=plugins,
        accelerator=cfg.hardware.accelerator,
        devices=cfg.hardware.devices,
        num_nodes=cfg.hardware.num_nodes,
        strategy=cfg.hardware.strategy,
        precision=cfg.hardware.precision,
        logger=False,
        use_distributed_sampler=False,
        enable_progress_bar=False,  # SamplingProgress draws batches and sampler steps instead
        callbacks=callbacks,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    start = time.perf_counter()

    def predict_loader() -> DataLoader:
        rank_batches = RankBatches(count, trainer.global_rank, trainer.world_size)
        return DataLoader(BatchIndices(count), batch_size=1, sampler=rank_batches, num_workers=0)

    module.predict_dataloader = predict_loader
    trainer.predict(module, return_predictions=False)
    trainer.strategy.barrier()
    if not trainer.is_global_zero:
        return None
    wall = time.perf_counter() - start
    shards = read_shards(shard_dir, count, key)
    write_manifest(shard_dir, count, key)
    tokens = torch.cat([s["tokens"] for s in shards])
    metric_start = time.perf_counter()
    metrics = suite.reduce(model, tokens, gather_features(suite, model, shards))
    metric_seconds = time.perf_counter() - metric_start + sum(s.get("metric_seconds", 0.0) for s in shards)
    nfe = [s["nfe"] for s in shards]
    cost_fe = [s["cost"] for s in shards]
    results = {
        "status": "complete",
        "config": OmegaConf.to_container(cfg, resolve=True),
        "domain": domain,
        "metrics": metrics,
        "cost": {
            "nfe": sum(n * s["tokens"].shape[0] for n, s in zip(nfe, shards, strict=True)) / tokens.shape[0],
            "forward_equivalents": sum(c * s["tokens"].shape[0] for c, s in zip(cost_fe, shards, strict=True))
            / tokens.shape[0],
            "wall_seconds": wall,
            "sampling_seconds": sum(s["seconds"] for s in shards),
            "metric_seconds": metric_seconds,
            # from the first batch started to the last batch written, over all ranks
            "generation_span_seconds": max(s["finished"] for s in shards) - min(s["started"] for s in shards),
            "samples_per_second": tokens.shape[0]
            / max(max(s["finished"] for s in shards) - min(s["started"] for s in shards), 1e-9),
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        },
        "num_samples": int(tokens.shape[0]),
        "run_key": key,
        "hardware": {
            "accelerator": cfg.hardware.accelerator,
            "world_size": trainer.world_size,
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        },
        "versions": versions(),
        "git_sha": git_sha(),
        "start_time": started,
    }
    files = save_samples(run_dir, model, domain, tokens) if cfg.save_samples else []
    if cfg.logger.kind == "wandb":
        log_to_wandb(cfg, run_dir, results, files, model)
    if cfg.logger.kind == "csv":
        log_to_csv(run_dir, results)
    results["end_time"] = dt.datetime.now(dt.timezone.utc).isoformat()
    results["files"] = files
    write_json_atomic(run_dir / "results.json", results)
    print_summary(results, run_dir)
    return results


def print_summary(results: dict, run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"unmask-eval: {results['num_samples']} samples ({results['domain']})")
    table.add_column("key")
    table.add_column("value", justify="right")
    for key, value in {
        **{f"eval/{k}": v for k, v in results["metrics"].items()},
        **{f"cost/{k}": v for k, v in results["cost"].items()},
    }.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console(stderr=False).print(table)
    Console().print(f"run directory: {run_dir}")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_reporting_errors("unmask-eval", lambda: evaluate(cfg, run_dir))


if __name__ == "__main__":
    main()
