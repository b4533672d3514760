"""fig_hybrid: the exploration-exploitation trade-off of the hybrid sampler.

docs/THEORY.md section 4: each step takes ``ceil(gamma k_t)`` positions from the moment sampler's
order (exploitation) and the rest from a prediction-independent spread order (exploration:
2-D Halton on MNIST's 7 x 7 code grid, uniformly random on text). gamma = 0 is the exploration
rule alone (with the moment sampler's tokens), gamma = 1 the moment sampler alone (bit for bit).
The figure shows quality over gamma x steps, and quality against NFE next to the pure untempered
rules (halton, random), confidence and the peers.
"""

from __future__ import annotations

import math
from pathlib import Path

from unmask.figures.common import (
    empty_panel,
    line_with_band,
    pivot,
    quality_columns,
    quality_key,
    resolved_table,
    select_models,
    sort_rows,
    with_interval,
)
from unmask.figures.records import Run
from unmask.figures.tables import Table, format_value, pyplot, save_figure

NAME = "fig_hybrid"
TITLE = "Hybrid sampler: quality over gamma x steps, against the pure rules and the peers"
COMPUTED = False
NEEDS = (
    "unmask-eval runs with a budget of sampler presets (conf/sampler/: hybrid_g0, hybrid_g25, hybrid, "
    "hybrid_g75, moment, and any others: halton, random, confidence, the peers) on model=mnist and/or "
    "model=shakespeare"
)
RUNTIME = "about 7 min"
COLUMNS = [
    "model",
    "method",
    "gamma",
    "steps",
    "nfe",
    "cost",
    "fid",
    "fid_stderr",
    "fid_floor",
    "label_entropy_bits",
    "gen_ppl",
    "gen_ppl_stderr",
    "bits_per_char",
    "bits_per_char_stderr",
    "bits_per_char_floor",
    "entropy_bits",
    "num_samples",
    "seconds",
]


def select(runs: list[Run]) -> list[Run]:
    return [r for r in select_models(runs, NAME) if r.get("budget") is not None]


def point(run: Run) -> tuple:
    return (f"model={run.model}", f"method={run.label}", f"steps={run.budget}")


def gamma_of(run: Run) -> float | None:
    """gamma of a hybrid run (``hybrid_g0`` included), 1 for the moment sampler (the hybrid with
    gamma = 1, bit for bit); None for the other rules (the untempered ``halton`` and ``random``
    orders are the pure exploration rules, drawn at temperature 1)."""
    if run.get("sampler.name") == "hybrid":
        return float(run.get("sampler.gamma"))
    if run.label == "moment":
        return 1.0
    return None


def collect(runs: list[Run]) -> list[Table]:
    rows = [
        {
            "model": r.model,
            "method": r.label,
            "gamma": gamma_of(r),
            "steps": r.budget,
            **quality_columns(r),
        }
        for r in runs
    ]
    table = Table(NAME, TITLE, COLUMNS, sort_rows(rows, ("model", "gamma", "method", "steps")))
    tables = [table]
    for model in ("mnist", "shakespeare"):
        key, what = quality_key(model)
        if not table.where(model=model):
            continue

        def cell(r, key=key):
            if key == "gen_ppl":
                return f"{with_interval(r, key)} (H {format_value(r['entropy_bits'])})"
            return with_interval(r, key)

        note = "Text cells: perplexity (per-sample entropy in bits)." if key == "gen_ppl" else ""
        title = f"{model}: {what} by method and steps"
        tables.append(pivot(table, f"{model}_{key}", title, "method", "steps", cell, {"model": model}, note))
    tables.append(resolved_table(table.rows, "method", ("steps",)))
    return tables


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    plt = pyplot()
    from matplotlib import colormaps

    rows = tables[0].rows
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.2), gridspec_kw={"width_ratios": [1, 1.4]})
    cmap = colormaps["plasma"]
    peer_markers = dict(
        zip(
            [
                "confidence",
                "threshold",
                "eb",
                "first_hitting",
                "remdm",
                "semi_ar",
                "maskgit",
                "random",
                "halton",
                "moment_cached",
            ],
            "s^vDPX*ph8",
            strict=True,
        )
    )
    for i, model in enumerate(("mnist", "shakespeare")):
        key, what = quality_key(model)
        picked = [r for r in rows if r["model"] == model]
        heat, ax = axes[i, 0], axes[i, 1]
        heat.set_title(f"{model}: {what} over gamma x steps")
        ax.set_title(f"{model}: {what} against NFE")
        hybrid = [r for r in picked if r["gamma"] is not None and math.isfinite(r[key])]
        if not picked:
            empty_panel(heat, f"no runs of model={model}")
            empty_panel(ax, f"no runs of model={model}")
            continue
        gammas = sorted({r["gamma"] for r in hybrid})
        steps = sorted({r["steps"] for r in hybrid})
        if gammas and steps:
            grid = [[math.nan] * len(steps) for _ in gammas]
            for r in hybrid:
                grid[gammas.index(r["gamma"])][steps.index(r["steps"])] = r[key]
            image = heat.imshow(grid, cmap="viridis_r", aspect="auto", origin="lower")
            heat.set_xticks(range(len(steps)), [str(s) for s in steps])
            heat.set_yticks(range(len(gammas)), [f"{g:g}" for g in gammas])
            heat.set_xlabel("steps")
            heat.set_ylabel("gamma (0: explore only, 1: moment only)")
            heat.grid(False)
            values = [v for row in grid for v in row if math.isfinite(v)]
            middle = (min(values) + max(values)) / 2
            for gi, row in enumerate(grid):
                for si, value in enumerate(row):
                    if math.isfinite(value):
                        color = "white" if value > middle else "black"  # dark cells are the high values
                        heat.text(
                            si, gi, format_value(value), ha="center", va="center", fontsize=7, color=color
                        )
            fig.colorbar(image, ax=heat, shrink=0.8)
        else:
            empty_panel(heat, "no hybrid runs")
        for method in dict.fromkeys(r["method"] for r in picked):
            mine = [r for r in picked if r["method"] == method]
            gamma = mine[0]["gamma"]
            if gamma is not None:
                style = {"color": cmap(0.85 * gamma), "linestyle": "-", "marker": "o", "linewidth": 1.6}
                name = f"{method} (gamma = {gamma:g})"
            else:
                style = {"color": "0.35", "linestyle": ":", "marker": peer_markers.get(method, "o")}
                name = method
            line_with_band(ax, mine, "nfe", key, label=name, markersize=4, **style)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("NFE (denoiser calls)")
        if key == "gen_ppl":
            ax.set_yscale("log")
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Hybrid sampler (colour: gamma) against confidence and the peers (grey)", fontsize=10)
    return save_figure(fig, out_dir, NAME)
