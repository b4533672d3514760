"""The loggers of an evaluation (``conf/logger/``: ``_target_`` configs of Lightning loggers;
the entry point sets ``save_dir`` to the run directory) and what a run logs to them: the config
as hyperparameters, ``eval/<metric>`` and ``cost/<key>``, and for W&B the sample grid or texts."""

from __future__ import annotations

import json
import netrc
import os
from pathlib import Path
from typing import Any


def wandb_api_key() -> str | None:
    """The W&B API key from ``WANDB_API_KEY`` or ``~/.netrc`` (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return os.environ["WANDB_API_KEY"]
    try:
        entry = netrc.netrc().authenticators("api.wandb.ai")
    except (OSError, netrc.NetrcParseError):
        return None
    return entry[2] if entry else None


def wandb_mode(mode: str | None) -> str:
    """The W&B mode a run uses: ``mode``, else ``$WANDB_MODE``, else ``online`` with an API key
    (``wandb_api_key``) and ``offline`` without one."""
    return mode or os.environ.get("WANDB_MODE") or ("online" if wandb_api_key() else "offline")


def wandb_logger(
    project: str,
    entity: str | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    job_type: str = "eval",
    mode: str | None = None,
    save_dir: str = ".",
):
    """Lightning's ``WandbLogger`` in ``wandb_mode(mode)`` (a run without a key never waits for
    a login)."""
    from lightning.pytorch.loggers import WandbLogger

    mode = wandb_mode(mode)
    logger = WandbLogger(
        project=project,
        entity=entity,
        name=name,
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


def run_identity(results: dict[str, Any], sweep: str | None, overrides: list[str]) -> dict[str, Any]:
    """How a run appears in W&B when the logger config leaves it open: a readable ``name``
    (``<variant>-T<budget>-<model>-seed<seed>``), ``group`` = its sweep (``sweep``: the sweep
    folder, ``None`` for a single run), ``tags`` = model, sampler, variant and dataset, and
    ``flat``: config keys added at the top level, ``variant``, ``budget``, ``seed``,
    ``num_samples`` and ``swept`` (the keys set on the command line, e.g. ``["sampler.gamma",
    "budget"]``). W&B shows the nested config by dotted paths (``sampler.gamma``), which is what
    its grouping and a report's ``Config("sampler.gamma")`` address."""
    config = results["config"]
    model_config = config.get("model") or {}
    model = str(model_config.get("name") or model_config.get("_target_", "model")).rsplit(".", 1)[-1]
    variant, budget = results.get("variant"), results.get("budget")
    parts = (str(variant), f"T{budget}" if budget is not None else "", model, f"seed{config['seed']}")
    sampler = (config.get("sampler") or {}).get("name")
    dataset = (config.get("dataset") or {}).get("name")
    tags = [str(t) for t in dict.fromkeys((model, sampler, variant, dataset)) if t]
    swept = [o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o]
    flat = {
        "variant": variant,
        "budget": budget,
        "seed": config["seed"],
        "num_samples": results["num_samples"],
    }
    flat["swept"] = [k for k in swept if not k.startswith("hydra")]
    return {"name": "-".join(p for p in parts if p), "group": sweep, "tags": tags, "flat": flat}


def scalars(results: dict[str, Any]) -> dict[str, float]:
    """The numbers of a results record under their logged names; an interval ``m_ci95 = [low,
    high]`` is logged as ``eval/m_ci95_low`` and ``eval/m_ci95_high``."""
    out: dict[str, float] = {}
    for key, value in results["metrics"].items():
        if isinstance(value, (list, tuple)):
            out |= {f"eval/{key}_low": value[0], f"eval/{key}_high": value[1]}
        else:
            out[f"eval/{key}"] = value
    return out | {f"cost/{k}": v for k, v in results["cost"].items()}


def log_results(
    logger: Any, results: dict[str, Any], files: dict[str, Path], flat: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Log a finished run to ``logger`` with its sample files (``files``: name -> where it is
    now) and its config plus the ``flat`` keys (``run_identity``); returns what the record should
    say about it (W&B: its mode, run id and directory)."""
    from lightning.pytorch.loggers import WandbLogger

    logger.log_hyperparams(results["config"] | dict(flat or {}))
    logger.log_metrics(scalars(results))
    if not isinstance(logger, WandbLogger):
        logger.save()
        return {}
    try:
        if "samples.png" in files:
            logger.log_image(key="samples", images=[str(files["samples.png"])])
        if "samples.jsonl" in files:
            lines = Path(files["samples.jsonl"]).read_text().splitlines()[:32]
            logger.log_text(
                key="samples", columns=["text"], data=[[json.loads(line)["text"]] for line in lines]
            )
        run = logger.experiment
        return {"wandb": {"mode": run.settings.mode, "run_id": run.id, "dir": str(run.dir)}}
    finally:
        import wandb

        wandb.finish()
