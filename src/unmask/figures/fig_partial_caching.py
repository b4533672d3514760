"""fig_partial_caching: quality against cost for the moment sampler with partial caching.

docs/THEORY.md section 5: with ``substeps = r`` a step's positions are revealed in ``r`` chunks, the
rows of later chunks refreshed by a partial forward (about ``|S| / L`` of a full one). The
figure plots quality against forward-equivalents (the FLOP-like cost) and against measured
sampling wall time, one line per ``r`` through steps 4, 8, 16.
"""

from __future__ import annotations

from pathlib import Path

from unmask.figures.common import (
    empty_panel,
    pivot,
    plot_lines,
    quality_columns,
    quality_key,
    resolved_table,
    select_models,
    sort_rows,
    with_interval,
)
from unmask.figures.records import Run
from unmask.figures.tables import Table, pyplot, save_figure

NAME = "fig_partial_caching"
TITLE = "Partial caching: quality against forward-equivalents and wall time"
COMPUTED = False
NEEDS = (
    "unmask-eval runs of sampler=moment with sampler.substeps in {1, 2, 4, 8} on model=mnist and/or "
    "model=shakespeare"
)
RUNTIME = "about 2.5 min"
COLUMNS = [
    "model",
    "substeps",
    "steps",
    "nfe",
    "cost",
    "seconds",
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
]


def select(runs: list[Run]) -> list[Run]:
    return [
        r
        for r in select_models(runs, NAME)
        if r.get("sampler.name") == "moment"
        and r.label in ("moment", "moment_cached")
        and r.get("sampler.token_temperature") is None
        and r.get("sampler.alpha") == 4.5
    ]


def point(run: Run) -> tuple:
    return (
        f"model={run.model}",
        f"substeps={run.get('sampler.substeps')}",
        f"steps={run.get('sampler.steps')}",
    )


def collect(runs: list[Run]) -> list[Table]:
    rows = [
        {
            "model": r.model,
            "substeps": r.get("sampler.substeps"),
            "steps": r.budget,
            **quality_columns(r),
        }
        for r in runs
    ]
    table = Table(NAME, TITLE, COLUMNS, sort_rows(rows, ("model", "substeps", "steps")))
    tables = [table]
    for model in ("mnist", "shakespeare"):
        key, what = quality_key(model)
        diversity = "label_entropy_bits" if model == "mnist" else "entropy_bits"
        if table.where(model=model):
            tables.append(
                pivot(
                    table,
                    f"{model}_{key}",
                    f"{model}: {what} (H: {diversity}; cost in forward-equivalents, wall seconds)",
                    "substeps",
                    "steps",
                    lambda r, key=key, div=diversity: (
                        f"{with_interval(r, key)} (H {r[div]:.2f}; {r['cost']:.2f}, {r['seconds']:.1f} s)"
                    ),
                    where={"model": model},
                )
            )
    tables.append(resolved_table(table.rows, "substeps", ("steps",)))
    return tables


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    plt = pyplot()
    rows = tables[0].rows
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.4))
    from matplotlib import colormaps

    cmap = colormaps["plasma"]
    substeps = sorted({r["substeps"] for r in rows})
    colors = {s: cmap(i / max(1, len(substeps) - 1) * 0.85) for i, s in enumerate(substeps)}
    for i, model in enumerate(("mnist", "shakespeare")):
        key, what = quality_key(model)
        picked = [r for r in rows if r["model"] == model]
        for j, (x, xlabel) in enumerate(
            (("cost", "forward-equivalents"), ("seconds", "sampling wall time (s)"))
        ):
            ax = axes[i, j]
            ax.set_title(f"{model}: {what}")
            drawn = plot_lines(
                ax, picked, x, key, "substeps", lambda s: {"color": colors[s]}, lambda s: f"substeps = {s}"
            )
            if not drawn:
                empty_panel(ax, f"no runs of model={model}")
                continue
            for r in picked:
                if j == 0:
                    ax.annotate(
                        str(r["steps"]), (r[x], r[key]), fontsize=6, xytext=(2, 2), textcoords="offset points"
                    )
            ax.set_xscale("log", base=2)
            ax.set_xlabel(xlabel)
            if key == "gen_ppl":
                ax.set_yscale("log")
            ax.legend()
    fig.suptitle("Moment sampler with partial caching (points: steps 4, 8, 16)", fontsize=10)
    return save_figure(fig, out_dir, NAME)
