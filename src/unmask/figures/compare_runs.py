"""Compare any runs: a table and a plot of metrics grouped by config keys, with 95% intervals
(``unmask-compare-runs``), from ``results.json`` files, offline W&B run directories or a W&B
project, and the W&B report that shows the same comparison.

Rules, in order:

1. Every run gets a *cell*: the values of the ``--group`` keys and of the ``--x`` key. A key is a
   dotted config path (``sampler.alpha``), or one of ``variant`` (the sampler preset's name),
   ``budget`` (the call budget, else ``sampler.steps``) and ``num_samples``. A key that no run has
   is refused, naming it.
2. Runs in one cell must be replicates: they may differ in ``seed`` and in bookkeeping that does
   not decide a number (``BOOKKEEPING``: the logger, callbacks, hardware, figure tag); any other
   difference is refused with the runs and the keys listed, never averaged.
3. A cell's value is the mean over its runs. Its standard error: one run, the metric's own
   ``<metric>_stderr`` (``results.json`` carries one per metric, a bootstrap's for the FIDs);
   ``k`` runs, ``sqrt(sum se_i^2) / k`` when each has one, else the spread of the ``k`` values,
   ``std / sqrt(k)``. Its 95% interval: ``value +- 1.96 se``, centred on the value (a bootstrap's
   percentile interval, ``<metric>_ci95`` in ``results.json``, can sit off the point estimate
   because resampling repeats samples, which biases FID upwards). A metric without a standard
   error has no interval (shown as such, never as zero).
4. Keys that are not grouped but differ *between* cells (``num_samples``, the model, ...) are
   listed under the table: the cells are then not like for like.

``report_spec`` is the W&B report of the comparison as plain data (one line panel per metric,
x = the ``--x`` key, runs grouped by the ``--group`` keys, standard-error bands), and
``build_report`` turns it into a ``wandb_workspaces`` report (saved online only).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unmask.figures.records import FigureError, Run, flatten
from unmask.figures.tables import Table

log = logging.getLogger(__name__)

SPECIAL_KEYS = ("variant", "budget", "num_samples")
# config keys that never decide a reported number (the run's output and logging settings)
BOOKKEEPING = ("seed", "logger", "callbacks", "hardware", "figure", "variant", "save_samples", "hydra")
Z95 = 1.959963984540054


def key_value(run: Run, key: str) -> Any:
    """The value of ``key`` (rule 1) in ``run``; ``None`` where the run has no such key."""
    if key == "variant":
        return run.label
    if key == "budget":
        return run.budget
    if key == "num_samples":
        return run.num_samples
    return run.get(key)


def has_key(run: Run, key: str) -> bool:
    if key in SPECIAL_KEYS:
        return True
    marker = object()
    return run.get(key, marker) is not marker


def comparable(run: Run) -> dict[str, Any]:
    """What must be equal between replicates: the flat config less ``BOOKKEEPING``, plus
    ``num_samples``."""
    flat = flatten(run.config)
    kept = {k: v for k, v in flat.items() if k.split(".")[0] not in BOOKKEEPING}
    return kept | {"num_samples": run.num_samples}


@dataclass(frozen=True)
class Estimate:
    """A cell's value of one metric: ``value``, ``stderr`` (``None``: unknown), the 95% interval
    (``low``, ``high``; ``None``: none) and the number of runs behind it."""

    value: float
    stderr: float | None
    low: float | None
    high: float | None
    runs: int


def estimate(metric: str, runs: Sequence[Run]) -> Estimate | None:
    """Rule 3 over the ``runs`` of one cell; ``None`` if none of them has ``metric``."""
    having = [r for r in runs if isinstance(r.metrics.get(metric), (int, float))]
    if not having:
        return None
    values = [float(r.metrics[metric]) for r in having]
    errors = [r.metrics.get(f"{metric}_stderr") for r in having]
    k = len(values)
    mean = sum(values) / k
    if all(isinstance(e, (int, float)) for e in errors):
        stderr: float | None = math.sqrt(sum(float(e) ** 2 for e in errors)) / k
    elif k > 1:
        stderr = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1) / k)
    else:
        stderr = None
    if stderr is not None and not math.isfinite(stderr):
        stderr = None  # a bootstrap turned off (metrics.bootstrap.replicates=0) or too few samples
    if stderr is not None:
        low, high = mean - Z95 * stderr, mean + Z95 * stderr
    else:
        low = high = None
    return Estimate(mean, stderr, low, high, k)


@dataclass(frozen=True)
class Comparison:
    """The cells of a comparison: ``cells[(group values, x)] = runs``, in sorted order, and the
    keys that differ between cells without being grouped (rule 4)."""

    group: tuple[str, ...]
    x: str
    metrics: tuple[str, ...]
    cells: dict[tuple[tuple[Any, ...], Any], list[Run]]
    ungrouped: dict[str, list[Any]]

    def table(self) -> Table:
        columns = [*self.group, self.x]
        for metric in self.metrics:
            columns += [metric, f"{metric}_stderr", f"{metric}_ci95_low", f"{metric}_ci95_high"]
        columns += ["runs", "num_samples"]
        note = ""
        if self.ungrouped:
            differing = "; ".join(f"{k} in {values}" for k, values in self.ungrouped.items())
            note = f"Not grouped but differing between cells (the cells are not like for like): {differing}."
        table = Table(
            "comparison",
            f"{', '.join(self.metrics)} by {', '.join(self.group)} against {self.x}",
            columns,
            note=note,
        )
        for (group, x), runs in self.cells.items():
            row: dict[str, Any] = dict(zip(self.group, group, strict=True)) | {self.x: x}
            for metric in self.metrics:
                found = estimate(metric, runs)
                if found is not None:
                    row |= {
                        metric: found.value,
                        f"{metric}_stderr": found.stderr,
                        f"{metric}_ci95_low": found.low,
                        f"{metric}_ci95_high": found.high,
                    }
            row["runs"] = len(runs)
            row["num_samples"] = sorted({r.num_samples for r in runs})[0]
            table.rows.append(row)
        return table


def sort_key(value: Any) -> tuple:
    return (
        (0, value, "")
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else (1, 0, str(value))
    )


def compare(runs: Sequence[Run], group: Sequence[str], x: str, metrics: Sequence[str]) -> Comparison:
    """Rules 1, 2 and 4 (``FigureError`` naming the key or the runs)."""
    runs = [r for r in runs if r.kind == "eval"]
    if not runs:
        raise FigureError("no evaluation runs found in the inputs")
    for key in (*group, x):
        if not any(has_key(r, key) for r in runs):
            raise FigureError(
                f"--group/--x key {key!r}: no run has it (a dotted config path, or variant, budget)"
            )
    for metric in metrics:
        if not any(metric in r.metrics for r in runs):
            suffixes = ("_stderr", "_ci95", "_ci95_low", "_ci95_high")
            known = sorted({m for r in runs for m in r.metrics if not m.endswith(suffixes)})
            raise FigureError(f"--y {metric!r}: no run reports it; the runs report {', '.join(known)}")
    cells: dict[tuple[tuple[Any, ...], Any], list[Run]] = defaultdict(list)
    for run in runs:
        cells[(tuple(key_value(run, k) for k in group), key_value(run, x))].append(run)
    grouped = set(group) | {x}
    for cell, members in cells.items():
        reference = comparable(members[0])
        for other in members[1:]:
            mine = comparable(other)
            differ = sorted(
                k
                for k in reference.keys() | mine.keys()
                if reference.get(k) != mine.get(k) and k not in grouped
            )
            if differ:
                shown = ", ".join(f"{k}={reference.get(k)!r} vs {mine.get(k)!r}" for k in differ[:4])
                raise FigureError(
                    f"{len(members)} runs at {', '.join(map(str, (*cell[0], cell[1])))} differ in {shown}: "
                    f"they are not replicates (only the seed may differ); group by {differ[0]} or pass "
                    "fewer runs",
                    [m.source for m in members],
                )
    ordered = dict(
        sorted(cells.items(), key=lambda item: ([sort_key(v) for v in item[0][0]], sort_key(item[0][1])))
    )
    return Comparison(tuple(group), x, tuple(metrics), ordered, ungrouped_differences(ordered, grouped))


def ungrouped_differences(cells: dict, grouped: set[str]) -> dict[str, list[Any]]:
    """Rule 4: the keys (``num_samples``, ``model.name``, ``dataset.name``, ``scale``, the metric
    settings) that take more than one value over the cells."""
    seen: dict[str, set[str]] = defaultdict(set)
    for members in cells.values():
        flat = comparable(members[0])
        for key, value in flat.items():
            if key in grouped:
                continue
            if key == "num_samples" or key.split(".")[0] in ("model", "dataset", "scale", "metrics"):
                seen[key].add(json.dumps(value, sort_keys=True, default=str))
    return {
        k: sorted(json.loads(v) if v != "null" else None for v in values)
        for k, values in sorted(seen.items())
        if len(values) > 1
    }


# --- reading runs ---------------------------------------------------------------------------


def offline_wandb_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Runs from offline W&B directories (``offline-run-*`` under ``paths``), read with
    ``wandb leet inspect --summary --json``: config as logged, ``eval/*`` and ``cost/*`` from the
    summary. Runs that did not finish are refused, naming them."""
    wandb = Path(sys.executable).with_name("wandb")
    found = sorted(
        {
            d
            for p in map(Path, paths)
            for d in ([p] if p.name.startswith("offline-run-") else p.rglob("offline-run-*"))
            if d.is_dir()
        }
    )
    if not found:
        raise FigureError(
            "--from wandb: no offline-run-* directory under the inputs", [str(p) for p in paths]
        )
    runs, unfinished = [], []
    for directory in found:
        result = subprocess.run(
            [str(wandb), "leet", "inspect", "--summary", "--json", str(directory)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            unfinished.append(f"{directory} (unreadable: {result.stderr.strip()[:200]})")
            continue
        record = json.loads(result.stdout)
        if record.get("state") != "finished":
            unfinished.append(f"{directory} (state {record.get('state')!r})")
            continue
        summary = {k: v for k, v in record.get("summary", {}).items() if not k.startswith("_")}
        config = record.get("config", {})
        runs.append(
            Run(
                source=f"wandb-offline:{directory}",
                config={
                    k: v for k, v in config.items() if "." not in k
                },  # the nested config, not its flat copies
                metrics={k.removeprefix("eval/"): v for k, v in summary.items() if k.startswith("eval/")},
                cost={k.removeprefix("cost/"): v for k, v in summary.items() if k.startswith("cost/")},
                num_samples=int(config.get("num_samples", 0)),
                payload={"variant": config.get("variant")},
            )
        )
    if unfinished:
        raise FigureError(f"{len(unfinished)} offline W&B run(s) not finished or unreadable", unfinished)
    return runs


# --- outputs --------------------------------------------------------------------------------


def interval_view(comparison: Comparison, table: Table) -> Table:
    """The table for reading: each metric as ``value [low, high]`` (its 95% interval)."""
    from unmask.figures.tables import format_value

    columns = [*comparison.group, comparison.x, *comparison.metrics, "runs", "num_samples"]
    view = Table("comparison", table.title, columns, note=table.note)
    for row in table.rows:
        shown = {k: row.get(k) for k in (*comparison.group, comparison.x, "runs", "num_samples")}
        for metric in comparison.metrics:
            value, low, high = (row.get(f"{metric}{s}") for s in ("", "_ci95_low", "_ci95_high"))
            if value is None:
                shown[metric] = None
            elif low is None:
                shown[metric] = f"{format_value(value)} (no interval)"
            else:
                shown[metric] = f"{format_value(value)} [{format_value(low)}, {format_value(high)}]"
        view.rows.append(shown)
    return view


def interval_of(row: dict[str, Any], metric: str) -> tuple[float, float]:
    """A row's 95% interval of ``metric``; the value itself (no bar) where it has none."""
    value, low, high = (row.get(f"{metric}{s}") for s in ("", "_ci95_low", "_ci95_high"))
    return (value, value) if low is None or high is None else (low, high)


def plot(comparison: Comparison, table: Table, out_dir: Path, stem: str) -> list[Path]:
    """One panel per metric: a line per group over x, with its 95% interval as error bars."""
    from unmask.figures.tables import pyplot, save_figure

    plt = pyplot()
    count = len(comparison.metrics)
    figure, axes = plt.subplots(1, count, figsize=(4.2 * count, 3.2), squeeze=False)
    groups = sorted(
        {tuple(row[k] for k in comparison.group) for row in table.rows},
        key=lambda g: [sort_key(v) for v in g],
    )
    xs = sorted({row[comparison.x] for row in table.rows}, key=sort_key)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
    for axis, metric in zip(axes[0], comparison.metrics, strict=True):
        for group in groups:
            rows = [
                r
                for r in table.rows
                if tuple(r[k] for k in comparison.group) == group and r.get(metric) is not None
            ]
            if not rows:
                continue
            where = [r[comparison.x] if numeric else xs.index(r[comparison.x]) for r in rows]
            values = [r[metric] for r in rows]
            bounds = [interval_of(r, metric) for r in rows]
            errors = [[v - lo for v, (lo, _) in zip(values, bounds, strict=True)]]
            errors.append([hi - v for v, (_, hi) in zip(values, bounds, strict=True)])
            label = ", ".join(map(str, group))
            axis.errorbar(where, values, yerr=errors, marker="o", markersize=3, capsize=3, label=label)
        axis.set_xlabel(comparison.x)
        axis.set_ylabel(metric)
        if numeric and len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) >= 8:
            axis.set_xscale("log", base=2)
        if not numeric:
            axis.set_xticks(range(len(xs)), [str(v) for v in xs])
        axis.set_title(f"{metric}, 95% intervals")
        axis.legend(title=", ".join(comparison.group))
    return save_figure(figure, out_dir, stem)


def report_spec(comparison: Comparison, entity: str | None, project: str) -> dict[str, Any]:
    """The W&B report of ``comparison`` as plain data (what ``build_report`` creates)."""

    def config_key(key: str) -> str:
        return key  # W&B addresses a nested config value by its dotted path

    return {
        "entity": entity,
        "project": project,
        "title": f"unmask: {', '.join(comparison.metrics)} against {comparison.x}",
        "description": f"Runs grouped by {', '.join(comparison.group)}; bands: standard error over runs.",
        "runset": {"groupby": [config_key(k) for k in comparison.group]},
        "panels": [
            {
                "type": "line",
                "title": metric,
                "x": config_key(comparison.x),
                "y": f"eval/{metric}",
                "groupby": config_key(comparison.group[0]),
                "groupby_aggfunc": "mean",
                "groupby_rangefunc": "stderr",
            }
            for metric in comparison.metrics
        ],
    }


def build_report(spec: dict[str, Any]) -> Any:
    """A ``wandb_workspaces`` report from ``report_spec`` output (no network until it is saved)."""
    import warnings

    with warnings.catch_warnings():  # its pydantic V1-style validators warn on import
        warnings.simplefilter("ignore", DeprecationWarning)
        import wandb_workspaces.reports.v2 as wr

    panels = [
        wr.LinePlot(
            title=p["title"],
            x=wr.Config(p["x"]),
            y=[wr.SummaryMetric(p["y"])],
            groupby=wr.Config(p["groupby"]),
            groupby_aggfunc=p["groupby_aggfunc"],
            groupby_rangefunc=p["groupby_rangefunc"],
        )
        for p in spec["panels"]
    ]
    runset = wr.Runset(
        entity=spec["entity"] or "", project=spec["project"], groupby=list(spec["runset"]["groupby"])
    )
    return wr.Report(
        project=spec["project"],
        entity=spec["entity"] or "",
        title=spec["title"],
        description=spec["description"],
        blocks=[
            wr.H1(spec["title"]),
            wr.P(spec["description"]),
            wr.PanelGrid(runsets=[runset], panels=panels),
        ],
    )


def online() -> bool:
    from unmask.loggers import wandb_api_key

    return os.environ.get("WANDB_MODE") not in ("offline", "disabled") and wandb_api_key() is not None
