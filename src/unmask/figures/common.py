"""What the evaluation figures share: reading a run's quality numbers, and the plotting helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from unmask.figures.records import Run
from unmask.figures.tables import Table, finite

MODELS = ("mnist", "shakespeare")
MODEL_TITLES = {"mnist": "MNIST (domain FID, lower is better)", "shakespeare": "Shakespeare"}


def number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def quality_columns(run: Run) -> dict[str, float]:
    """The numbers every evaluation figure reports for a run: the quality metric of its model's
    domain (MNIST: domain FID, its floor at the same n and the entropy of the classifier's labels,
    a diversity check; text: judge perplexity with the per-sample entropy), the cost and the
    sampling wall time."""
    m, c = run.metrics, run.cost
    return {
        "fid": number(m.get("fid_mnist")),
        "fid_floor": number(m.get("fid_mnist_data_same_n")),
        "label_entropy_bits": number(m.get("label_entropy_bits")),
        "gen_ppl": number(m.get("gen_ppl")),
        "entropy_bits": number(m.get("sample_entropy_bits")),
        "nfe": number(c.get("nfe")),
        "cost": number(c.get("forward_equivalents")),
        "seconds": number(c.get("sampling_seconds")),
        "num_samples": run.num_samples,
    }


QUALITY = {"mnist": ("fid", "domain FID"), "shakespeare": ("gen_ppl", "gen. perplexity (SmolLM2)")}


def quality_key(model: str) -> tuple[str, str]:
    return QUALITY.get(model, ("fid", "quality"))


def select_models(runs: Iterable[Run], figure: str) -> list[Run]:
    """Evaluation runs of the shipped models that ``figure`` may use: those its preset made, and
    ad-hoc runs (no ``figure.preset``); a run of another figure's preset is not used."""
    return [
        r for r in runs if r.kind == "eval" and r.model in MODELS and r.get("figure.preset", figure) == figure
    ]


def sort_rows(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    def key(row: dict) -> tuple:
        return tuple(
            (0, row[k]) if isinstance(row.get(k), (int, float)) else (1, str(row.get(k))) for k in keys
        )

    return sorted(rows, key=key)


def pivot(
    table: Table,
    name: str,
    title: str,
    rows_by: str,
    columns_by: str,
    value: Callable[[dict], Any],
    where: dict | None = None,
    note: str = "",
) -> Table:
    """A wide table: one row per ``rows_by`` value, one column per ``columns_by`` value."""
    picked = table.where(**(where or {}))
    row_keys = list(dict.fromkeys(r[rows_by] for r in picked))
    col_keys = sorted(dict.fromkeys(r[columns_by] for r in picked), key=lambda v: (str(type(v)), v))
    columns = [rows_by, *[f"{columns_by} {c}" for c in col_keys]]
    out = Table(name, title, columns, note=note)
    for rk in row_keys:
        row = {rows_by: rk}
        for ck in col_keys:
            cells = [r for r in picked if r[rows_by] == rk and r[columns_by] == ck]
            row[f"{columns_by} {ck}"] = value(cells[0]) if cells else None
        out.rows.append(row)
    return out


def empty_panel(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_lines(
    ax: Any,
    rows: list[dict],
    x: str,
    y: str,
    group: str,
    style: Callable[[Any], dict],
    label: Callable[[Any], str] = str,
) -> bool:
    """One line per ``group`` value through the rows' (x, y) points (sorted by x); False if no point."""
    drawn = False
    for key in dict.fromkeys(r[group] for r in rows):
        points = sorted(
            (r[x], r[y]) for r in rows if r[group] == key and finite([r[x], r[y]]) == [r[x], r[y]]
        )
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, label=label(key), **({"marker": "o", "markersize": 3} | style(key)))
        drawn = True
    return drawn


def alpha_label(alpha: Any) -> str:
    return "alpha = inf" if isinstance(alpha, float) and math.isinf(alpha) else f"alpha = {alpha:g}"


def alpha_colors(alphas: Iterable[float]) -> dict[float, Any]:
    from matplotlib import colormaps

    finite_alphas = sorted(a for a in alphas if math.isfinite(a))
    cmap = colormaps["viridis"]
    colors = {a: cmap(i / max(1, len(finite_alphas) - 1) * 0.85) for i, a in enumerate(finite_alphas)}
    colors[math.inf] = "black"
    return colors
