"""The loggers of an evaluation (``conf/logger/``: ``_target_`` configs of Lightning loggers;
the entry point sets ``save_dir`` to the run directory) and what a run logs to them: the config
as hyperparameters, ``eval/<metric>`` and ``cost/<key>``, and for W&B the sample grid or texts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def wandb_logger(
    project: str,
    entity: str | None = None,
    group: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    job_type: str = "eval",
    mode: str | None = None,
    save_dir: str = ".",
):
    """Lightning's ``WandbLogger``; ``mode`` null = ``$WANDB_MODE`` if set, else ``online`` when
    ``WANDB_API_KEY`` is set, else ``offline`` (a run without a key never waits for a login)."""
    from lightning.pytorch.loggers import WandbLogger

    mode = (
        mode or os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    )
    logger = WandbLogger(
        project=project,
        entity=entity,
        group=group,
        tags=list(tags),
        job_type=job_type,
        save_dir=save_dir,
        mode=mode,
    )
    # Lightning passes anonymous=None to wandb.init, which warns that the (removed) setting "has
    # no effect" on every run; not passing it at all is the same run without the warning
    if logger._wandb_init.get("anonymous", "unset") is None:
        del logger._wandb_init["anonymous"]
    return logger


def scalars(results: dict[str, Any]) -> dict[str, float]:
    """The numbers of a results record under their logged names."""
    return {f"eval/{k}": v for k, v in results["metrics"].items()} | {
        f"cost/{k}": v for k, v in results["cost"].items()
    }


def log_results(logger: Any, results: dict[str, Any], run_dir: Path, files: list[str]) -> dict[str, Any]:
    """Log a finished run to ``logger``; returns what the record should say about it (W&B: its
    mode, run id and directory)."""
    from lightning.pytorch.loggers import WandbLogger

    logger.log_hyperparams(results["config"])
    logger.log_metrics(scalars(results))
    if not isinstance(logger, WandbLogger):
        logger.save()
        return {}
    try:
        if "samples.png" in files:
            logger.log_image(key="samples", images=[str(run_dir / "samples.png")])
        if "samples.jsonl" in files:
            lines = (run_dir / "samples.jsonl").read_text().splitlines()[:32]
            logger.log_text(
                key="samples", columns=["text"], data=[[json.loads(line)["text"]] for line in lines]
            )
        run = logger.experiment
        return {"wandb": {"mode": run.settings.mode, "run_id": run.id, "dir": str(run.dir)}}
    finally:
        import wandb

        wandb.finish()
