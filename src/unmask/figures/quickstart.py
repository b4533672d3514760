"""quickstart: the main job's summary (``make run``): a compact comparison of samplers at a few
step budgets on the shipped MNIST and Shakespeare models, as a table, a figure and sample grids.

Each panel (MNIST domain FID; Shakespeare judge bits per character) carries its runs' 95% bands,
the real data scored at the same n (the FID floor; the real-text line) and, under it, one sentence
per budget saying what is resolved: the best method, the methods not resolved from it at 2
standard errors of the difference, and those resolved worse (``common.rank_against_best``; the
same sentences are the ``quickstart_resolved`` table). Only the resolved part of an ordering is
claimed; with one seed per point and 2 standard errors over many pairs, a claim can still fail
on another seed (the README reports two more seeds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from unmask.figures.common import (
    Z95,
    data_line,
    empty_panel,
    method_lines,
    quality_columns,
    resolved_sentence,
    resolved_table,
    select_models,
    shared_legend,
    with_interval,
)
from unmask.figures.records import Run
from unmask.figures.tables import Table, format_value, pyplot, save_figure

NAME = "quickstart"
TITLE = "Quickstart: samplers x steps on the shipped MNIST and Shakespeare models"
COMPUTED = False
NEEDS = "unmask-eval runs with a budget (conf/sampler/ presets) on model=mnist and/or model=shakespeare"
RUNTIME = "about 6 min"
COLUMNS = [
    "model",
    "method",
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


def collect(runs: list[Run]) -> list[Table]:
    rows = [
        {
            "model": r.model,
            "method": r.label,
            "steps": r.budget,
            **quality_columns(r),
            "_folder": str(r.folder),
        }
        for r in runs
    ]
    methods = sorted(
        {r.label for r in runs}, key=lambda label: min(job_number(r) for r in runs if r.label == label)
    )
    rows.sort(key=lambda r: (r["model"], methods.index(r["method"]), r["steps"]))
    table = Table(NAME, TITLE, COLUMNS, rows)
    return [table, summary(table, methods), resolved_table(table.rows, "method", ("steps",))]


def panel_sentences(resolved: Table, model: str) -> list[str]:
    return [resolved_sentence(r, f"{r['steps']} steps") for r in resolved.where(model=model)]


def job_number(run: Run) -> float:
    """Hydra's job number (the run's folder name) orders the methods as the preset lists them."""
    name = run.folder.name
    return int(name) if name.isdigit() else float("inf")


def summary(table: Table, methods: list[str]) -> Table:
    """One row per method: MNIST FID and Shakespeare judge bits per character (entropy) at each
    step budget, and the denoiser calls each model's runs made."""
    steps = sorted({r["steps"] for r in table.rows})
    models = [m for m in ("mnist", "shakespeare") if table.where(model=m)]
    heads = {"mnist": "FID", "shakespeare": "bits/char (H)"}
    columns = ["method", *[f"{heads[m]} {s}" for m in models for s in steps], *[f"NFE {m}" for m in models]]
    counts = ", ".join(f"{m} {table.where(model=m)[0]['num_samples']}" for m in models)
    out = Table(
        "summary",
        "Summary: MNIST domain FID, Shakespeare judge bits per character (entropy, bits)",
        columns,
        note=(
            f"num_samples: {counts}. Columns by steps (the call budget), each value with the half width "
            "of its 95% interval (1.96 standard errors: a bootstrap over the images for FID, the delta "
            "method over the texts for bits per character, the judge's NLL over the characters it saw); "
            f"{data_lines(table)}. NFE: the calls made at each "
            "budget (adaptive and block-wise samplers may differ; partial caching adds refreshes, "
            "counted in the CSV's cost)."
        ),
    )
    for method in methods:
        row = {"method": method}
        for model in models:
            nfe = []
            for s in steps:
                cells = table.where(model=model, method=method, steps=s)
                if not cells:
                    continue
                cell = cells[0]
                if model == "mnist":
                    row[f"FID {s}"] = with_interval(cell, "fid")
                else:
                    row[f"bits/char (H) {s}"] = (
                        f"{with_interval(cell, 'bits_per_char')} ({cell['entropy_bits']:.2f})"
                    )
                nfe.append(format_value(cell["nfe"]))
            row[f"NFE {model}"] = "/".join(nfe)
        out.rows.append(row)
    return out


def data_lines(table: Table) -> str:
    parts = []
    for model, key, what in (
        ("mnist", "fid_floor", "real images at the same n score FID"),
        ("shakespeare", "bits_per_char_floor", "random held-out windows score"),
    ):
        line = data_line(table.where(model=model), key)
        if line:
            parts.append(f"{what} {line['mean']:.3g} ± {Z95 * line['stderr']:.2g}")
    return "; ".join(parts) or "no data line"


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    import textwrap

    plt = pyplot()
    table = tables[0]
    rows = table.rows
    methods = list(dict.fromkeys(r["method"] for r in rows))
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(methods) <= 10 else colormaps["tab20"]
    colors = {m: cmap(i % cmap.N) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6))
    panels = [
        (axes[0], "mnist", "fid", "fid_floor", "MNIST: domain FID (lower is better)"),
        (
            axes[1],
            "shakespeare",
            "bits_per_char",
            "bits_per_char_floor",
            "Shakespeare: judge bits/char (SmolLM2)",
        ),
        (axes[2], "shakespeare", "entropy_bits", None, "Shakespeare: per-sample entropy (bits)"),
    ]
    for ax, model, key, floor, title in panels:
        ax.set_title(title)
        picked = [r for r in rows if r["model"] == model]
        if not picked:
            empty_panel(ax, f"no runs of model={model}")
            continue
        method_lines(ax, picked, methods, key, colors, dashed=PEERS)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("NFE (denoiser calls)")
        if key == "fid":
            ax.set_yscale("log")  # the collapsed peers sit 3-4x above the rest
        line = data_line(picked, floor) if floor else None
        if line:
            what = "real images" if model == "mnist" else "real text"
            mean, stderr = line["mean"], line["stderr"]
            ax.axhline(mean, color="0.2", lw=1, ls=":", label=f"{what}, same n")
            if math.isfinite(stderr):
                ax.axhspan(mean - Z95 * stderr, mean + Z95 * stderr, color="0.5", alpha=0.12, lw=0)
        if key in ("fid", "bits_per_char"):
            sentences = "\n".join(textwrap.fill(t, 62) for t in panel_sentences(tables[2], model))
            ax.text(0, -0.2, f"Resolved at 2 se:\n{sentences}", transform=ax.transAxes, va="top", fontsize=6)
    shared_legend(fig, axes, 10)
    fig.suptitle("Samplers at a budget of 4, 8, 16 steps (dashed: peers; bands: 95%)", fontsize=10, y=1.06)
    files = save_figure(fig, out_dir, NAME)
    return files + sample_grids(rows, methods, out_dir)


PEERS = ("threshold", "eb", "first_hitting", "remdm", "semi_ar", "llada")


def sample_grids(rows: list[dict], methods: list[str], out_dir: Path) -> list[Path]:
    """The first samples of each method at the largest step budget: ``quickstart_samples_mnist.png``
    (one row of 8 digits per method, cut from the run's ``samples.png``) and
    ``quickstart_samples_shakespeare.md`` (two texts per method)."""
    written = []
    for model in ("mnist", "shakespeare"):
        picked = [r for r in rows if r["model"] == model and Path(r["_folder"]).is_dir()]
        if not picked:
            continue
        steps = max(r["steps"] for r in picked)
        chosen = [
            next(r for r in picked if r["method"] == m and r["steps"] == steps)
            for m in methods
            if any(r["method"] == m and r["steps"] == steps for r in picked)
        ]
        if model == "mnist":
            path = mnist_grid(chosen, steps, out_dir)
        else:
            path = text_samples(chosen, steps, out_dir)
        if path:
            written.append(path)
    return written


def mnist_grid(chosen: list[dict], steps: int, out_dir: Path) -> Path | None:
    plt = pyplot()
    strips = []
    for r in chosen:
        png = Path(r["_folder"]) / "samples.png"
        if png.exists():
            image = plt.imread(png)
            strips.append((r["method"], image[:28, :, 0] if image.ndim == 3 else image[:28]))
    if not strips:
        return None
    fig, axes = plt.subplots(len(strips), 1, figsize=(6, 0.75 * len(strips) + 0.4), squeeze=False)
    for ax, (method, strip) in zip(axes[:, 0], strips, strict=True):
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_ylabel(method, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"MNIST samples, {steps} steps (first 8 of each run)", fontsize=9)
    return save_figure(fig, out_dir, f"{NAME}_samples_mnist")[0]


def text_samples(chosen: list[dict], steps: int, out_dir: Path) -> Path | None:
    lines = [f"## Shakespeare samples, {steps} steps (the first two of each run)", ""]
    for r in chosen:
        path = Path(r["_folder"]) / "samples.jsonl"
        if not path.exists():
            continue
        texts = [json.loads(line)["text"] for line in path.read_text().splitlines()[:2]]
        lines += [f"**{r['method']}**", ""] + [f"```\n{t}\n```" for t in texts] + [""]
    if len(lines) == 2:
        return None
    out = out_dir / f"{NAME}_samples_shakespeare.md"
    out.write_text("\n".join(lines))
    return out


def print_summary(tables: list[Table]) -> None:
    """The summary table as Markdown on stdout (wide, but copyable into a README)."""
    print(tables[1].markdown())
