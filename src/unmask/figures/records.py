"""Run records for the figures: ``results.json`` files found under run or sweep directories, or
W&B runs, read into one format, and the checks that a figure's runs belong together.

A record is either an evaluation (``unmask-eval``'s ``results.json``: config, metrics, cost,
num_samples, ...) or a computed figure's record (``kind == "computed"``: the figure's settings and
its tables, written by ``unmask-figures`` for the figures that are exact computations).
Problems are ``FigureError``s whose first line says what is wrong and whose next lines name the
offending paths.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unmask.loggers import wandb_api_key


class FigureError(Exception):
    """Bad or missing input of a figure: one line of explanation, then the paths concerned."""

    def __init__(self, message: str, paths: Iterable[str] = ()):
        self.message, self.paths = message, list(paths)
        super().__init__("\n".join([message, *(f"  {p}" for p in self.paths)]))


@dataclass(frozen=True)
class Run:
    """One record. ``source``: its ``results.json`` path or ``wandb:<entity>/<project>/<id>``."""

    source: str
    config: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    num_samples: int = 0
    kind: str = "eval"  # or "computed"
    payload: dict[str, Any] = field(default_factory=dict)

    def get(self, dotted: str, default: Any = None) -> Any:
        """A config value by dotted path (``sampler.alpha``), or ``default``."""
        node: Any = self.config
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node

    @property
    def model(self) -> str | None:
        return self.get("model.name")

    @property
    def label(self) -> str | None:
        """The run's sampler variant (``variant`` in results.json and the W&B config: the sampler
        preset's name, e.g. ``hybrid_g25``), else the sampler's name."""
        return self.payload.get("variant") or self.get("variant") or self.get("sampler.name")

    @property
    def budget(self) -> int | None:
        """The call budget of the run (``budget=T``; for ``budget=length`` the ``T = L`` that
        results.json records), else the sampler's own ``steps``."""
        recorded = self.payload.get("budget")
        if isinstance(recorded, int) and not isinstance(recorded, bool):
            return recorded
        return self.get("budget") or self.get("sampler.steps")

    @property
    def folder(self) -> Path:
        return Path(self.source).parent


def parse_record(path: Path) -> Run:
    record = json.loads(path.read_text())
    if record.get("kind") == "computed":
        return Run(str(path), record.get("config", {}), kind="computed", payload=record)
    if not isinstance(record.get("config"), dict):
        raise ValueError(f"config is {type(record.get('config')).__name__}, not the run's config")
    return Run(
        source=str(path),
        config=record["config"],
        metrics=record.get("metrics", {}),
        cost=record.get("cost", {}),
        num_samples=int(record.get("num_samples", 0)),
        payload=record,
    )


def load_runs(paths: Iterable[str | Path], partial: bool = False) -> tuple[list[Run], list[str]]:
    """Every ``results.json`` under ``paths`` (files or folders, searched recursively), and the
    runs that were skipped.

    A job folder that Hydra started (it holds ``.hydra/config.yaml``) without a complete
    ``results.json`` is a missing run: crashed, still running or cancelled. Missing runs and
    unreadable records are a ``FigureError`` naming them, unless ``partial`` (then they are
    returned as the skipped list); a path that does not exist is always an error.
    """
    absent = [str(p) for p in map(Path, paths) if not p.exists()]
    if absent:
        raise FigureError(f"{len(absent)} input path(s) do not exist", absent)
    runs, skipped = [], []
    for root in map(Path, paths):
        files = [root] if root.is_file() else sorted(root.rglob("results.json"))
        jobs = [] if root.is_file() else sorted(p.parent.parent for p in root.rglob(".hydra/config.yaml"))
        skipped += [
            f"{job} (no results.json: failed, cancelled or still running; see its log)"
            for job in jobs
            if not (job / "results.json").exists()
        ]
        for path in files:
            try:
                run = parse_record(path)
            except (OSError, ValueError, KeyError) as err:
                skipped.append(f"{path} (unreadable: {type(err).__name__}: {err})")
                continue
            if run.kind == "eval" and run.payload.get("status", "complete") != "complete":
                skipped.append(f"{path} (status {run.payload.get('status')!r})")
                continue
            runs.append(run)
    if skipped and not partial:
        raise FigureError(
            f"{len(skipped)} run(s) missing or unreadable in the results directories; rerun them "
            "(a rerun in the same directory resumes) or pass --partial to draw without them",
            skipped,
        )
    return runs, skipped


def load_wandb(project: str) -> list[Run]:
    """Finished runs of a W&B project (``entity/project``), logged by ``unmask-eval
    logger=wandb`` (config as hyperparameters, ``eval/*`` and ``cost/*`` in the summary)."""
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        raise FigureError(
            f"--project {project}: WANDB_MODE={os.environ['WANDB_MODE']} (reading a project needs W&B online)"
        )
    if wandb_api_key() is None:
        raise FigureError(
            f"--project {project}: no W&B API key (set WANDB_API_KEY or run `wandb login`); "
            "without W&B, pass the run or sweep directories instead"
        )
    import wandb

    runs = []
    for remote in wandb.Api().runs(project, filters={"state": "finished"}):
        summary = {k: v for k, v in dict(remote.summary).items() if isinstance(v, (int, float))}
        config = dict(remote.config)
        runs.append(
            Run(
                source=f"wandb:{'/'.join(remote.path)}",
                config=config,
                metrics={k.removeprefix("eval/"): v for k, v in summary.items() if k.startswith("eval/")},
                cost={k.removeprefix("cost/"): v for k, v in summary.items() if k.startswith("cost/")},
                num_samples=int(config.get("num_samples", 0)),
            )
        )
    return runs


def check_runs(runs: list[Run], point: Callable[[Run], tuple], shared: tuple[str, ...] = ("seed",)) -> None:
    """Raise a ``FigureError`` naming the paths if two runs sit at the same point of the figure
    (a rerun with other settings, or two sweeps passed together), or if runs of one model differ
    in a setting that must be shared (``seed``, ``num_samples``)."""
    by_point: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        by_point[point(run)].append(run)
    clashes = {key: group for key, group in by_point.items() if len(group) > 1}
    if clashes:
        key = next(iter(clashes))
        paths = [f"{r.source} ({describe_difference(r, group)})" for group in clashes.values() for r in group]
        raise FigureError(
            f"mixed configurations: {sum(map(len, clashes.values()))} runs at {len(clashes)} point(s) "
            f"that should hold one run each, e.g. {format_point(key)}; pass one sweep per figure",
            paths,
        )
    for setting in (*shared, "num_samples"):
        values: dict[Any, dict[Any, list[str]]] = defaultdict(lambda: defaultdict(list))
        for run in runs:
            value = run.num_samples if setting == "num_samples" else run.get(setting)
            values[run.model][json.dumps(value)].append(run.source)
        for model, seen in values.items():
            if len(seen) > 1:
                paths = [f"{p} ({setting}={v})" for v, group in seen.items() for p in group[:3]]
                raise FigureError(
                    f"mixed configurations: runs of model={model} differ in {setting} "
                    f"({', '.join(seen)}); a figure compares runs with the same {setting}",
                    paths,
                )


def format_point(key: tuple) -> str:
    return ", ".join(str(part) for part in key)


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def describe_difference(run: Run, group: list[Run]) -> str:
    """The config keys (and num_samples) in which ``run`` differs from the others of ``group``."""
    mine = flatten(run.config) | {"num_samples": run.num_samples}
    keys = set()
    for other in group:
        theirs = flatten(other.config) | {"num_samples": other.num_samples}
        keys |= {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}
    keys -= {"hydra", "logger.group"}
    shown = sorted(keys)[:4]
    return ", ".join(f"{k}={mine.get(k)}" for k in shown) or "same configuration"
