"""fig_maskgit_vs_moment: MaskGIT against the moment sampler over alpha x steps.

docs/THEORY.md section 2: MaskGIT with choice temperature alpha behaves like the moment sampler with
beta = 1 + 1/alpha (tokens at temperature alpha / (1 + alpha)). The figure puts the two side by
side on the shipped models: domain FID on MNIST, generative perplexity and per-sample entropy on
Shakespeare (a lower perplexity at a lower entropy is a colder sampler, not a better one).
"""

from __future__ import annotations

import math
from pathlib import Path

from unmask.figures.common import (
    alpha_colors,
    alpha_label,
    empty_panel,
    number,
    pivot,
    plot_lines,
    quality_columns,
    resolved_table,
    select_models,
    sort_rows,
)
from unmask.figures.records import Run
from unmask.figures.tables import Table, finite, pyplot, save_figure

NAME = "fig_maskgit_vs_moment"
TITLE = "MaskGIT against the moment sampler over alpha and steps"
COMPUTED = False
RUNTIME = "about 8 min"
NEEDS = (
    "unmask-eval runs of sampler=maskgit and sampler=moment on model=mnist and/or model=shakespeare "
    "(any alpha and steps)"
)
COLUMNS = [
    "model",
    "sampler",
    "alpha",
    "steps",
    "nfe",
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
    """Plain maskgit / moment runs (no partial caching, default token law)."""
    return [
        r
        for r in select_models(runs, NAME)
        if r.get("sampler.name") in ("maskgit", "moment")
        and r.label == r.get("sampler.name")
        and r.get("sampler.substeps", 1) == 1
        and r.get("sampler.token_temperature") is None
    ]


def point(run: Run) -> tuple:
    return (
        f"model={run.model}",
        f"sampler={run.get('sampler.name')}",
        f"alpha={run.get('sampler.alpha')}",
        f"steps={run.get('sampler.steps')}",
    )


def collect(runs: list[Run]) -> list[Table]:
    rows = []
    for run in runs:
        rows.append(
            {
                "model": run.model,
                "sampler": run.get("sampler.name"),
                "alpha": number(run.get("sampler.alpha")),
                "steps": run.budget,
                **quality_columns(run),
            }
        )
    table = Table(NAME, TITLE, COLUMNS, sort_rows(rows, ("model", "sampler", "alpha", "steps")))
    tables = [table]
    for model, key, what in (("mnist", "fid", "domain FID"), ("shakespeare", "gen_ppl", "gen. perplexity")):
        if not table.where(model=model):
            continue
        merged = merge_samplers(table.where(model=model), key)
        pair = Table("tmp", "", ["alpha", "steps", "value"], merged)
        tables.append(
            pivot(
                pair,
                f"{model}_{key}",
                f"{model}: {what}, MaskGIT / moment",
                "alpha",
                "steps",
                lambda r: r["value"],
                note="Each cell: MaskGIT / moment sampler at the same alpha and steps.",
            )
        )
    tables.append(resolved_table(table.rows, "sampler", ("alpha", "steps")))
    return tables


def merge_samplers(rows: list[dict], key: str) -> list[dict]:
    """Rows ``{alpha, steps, value = "maskgit / moment"}``."""
    from unmask.figures.tables import format_value

    cells: dict[tuple, dict] = {}
    for row in rows:
        cells.setdefault((row["alpha"], row["steps"]), {})[row["sampler"]] = row[key]
    return [
        {
            "alpha": a,
            "steps": s,
            "value": f"{format_value(v.get('maskgit'))} / {format_value(v.get('moment'))}",
        }
        for (a, s), v in sorted(cells.items())
    ]


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    plt = pyplot()
    rows = tables[0].rows
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    colors = alpha_colors(r["alpha"] for r in rows)

    def style(key):
        sampler, alpha = key
        return {"color": colors.get(alpha, "grey"), "linestyle": "-" if sampler == "maskgit" else "--"}

    def label(key):
        sampler, alpha = key
        return f"{sampler}, {alpha_label(alpha)}"

    for r in rows:
        r["_key"] = (r["sampler"], r["alpha"])
    panels = [
        (axes[0], "mnist", "fid", "MNIST: domain FID (lower is better)"),
        (axes[1], "shakespeare", "gen_ppl", "Shakespeare: gen. perplexity (SmolLM2)"),
        (axes[2], "shakespeare", "entropy_bits", "Shakespeare: per-sample entropy (bits)"),
    ]
    for ax, model, key, title in panels:
        picked = [r for r in rows if r["model"] == model]
        ax.set_title(title)
        if not plot_lines(ax, picked, "steps", key, "_key", style, label):
            empty_panel(ax, f"no runs of model={model}")
            continue
        ax.set_xscale("log", base=2)
        ax.set_xlabel("steps")
        if key in ("gen_ppl", "fid"):
            ax.set_yscale("log")
        if model == "mnist":
            floor = [r["fid_floor"] for r in picked if not math.isnan(r["fid_floor"])]
            if floor:
                ax.set_title(f"{title}\nreal images at the same n: {sum(floor) / len(floor):.0f}")
    ax = axes[3]
    ax.set_title("Shakespeare: perplexity against entropy")
    text = [
        r
        for r in rows
        if r["model"] == "shakespeare"
        and finite([r["gen_ppl"], r["entropy_bits"]]) == [r["gen_ppl"], r["entropy_bits"]]
    ]
    if text:
        for r in text:
            ax.scatter(
                r["entropy_bits"],
                r["gen_ppl"],
                color=colors.get(r["alpha"], "grey"),
                marker="o" if r["sampler"] == "maskgit" else "x",
                s=14 + 2 * r["steps"],
            )
        ax.set_yscale("log")
        ax.set_xlabel("per-sample entropy (bits)")
        ax.set_ylabel("gen. perplexity")
        ax.text(0.02, 0.95, "o maskgit, x moment; size = steps", transform=ax.transAxes, fontsize=7, va="top")
    else:
        empty_panel(ax, "no runs of model=shakespeare with gen_ppl")
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=5, bbox_to_anchor=(0.5, -0.12), fontsize=7)
    for r in rows:
        r.pop("_key", None)
    fig.suptitle("MaskGIT (solid) against the moment sampler (dashed) at the same alpha", fontsize=10)
    return save_figure(fig, out_dir, NAME)
