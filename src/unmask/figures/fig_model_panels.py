"""fig_model_panels: the main samplers on the shipped models, three seeds per point, against the
data and against the model's own law.

Each point (model, method, budget) is run at several seeds (n = 2000 images, n = 128 texts per
seed). A point's value is the mean over its seeds; its standard error is the larger of

- the runs' own standard errors combined, ``sqrt(sum se_i^2) / k`` (a bootstrap over the images
  for FID, the delta method over the texts for bits per character), and
- the spread of the seeds, ``sd(values) / sqrt(k)``,

so that an effect is claimed only if neither says it is noise. The pooled table's
``<metric>_seed_ratio`` (``sd(values)^2 / mean(se_i^2)``, about 1 where the runs' standard errors
are right; averaged over the points in the table's note) checks the first against the second.

Two lines stand for what a sampler is measured against: the data at the same n (the MNIST FID
floor of n validation images, the judge's bits per character on n random held-out windows), drawn
with each seed, so their own sampling spread shows; and the model's own law (``own_law``: the
untempered random-order sampler at one token per call, ``budget=length``), the quality the
denoiser gives without any sampler's help. A sampler below the own-law line in bits per character
is colder, not a better model of the text: its per-sample entropy and distinct-n say how much.

What is resolved (``fig_model_panels_resolved.csv``, the sentences under the panels): per budget
the best method, those within 2 standard errors of the difference and those resolved worse
(``common.rank_against_best`` on the pooled values); ``order_in_every_seed`` says whether each
resolved pair is in the same order in every seed alone. ``fig_model_panels_own_law.csv`` gives
each method's difference to the own law with its standard error.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from pathlib import Path
from typing import Any

from unmask.figures.common import (
    DEGENERATE_ENTROPY_BITS,
    RESOLVED_METRICS,
    Z95,
    data_line,
    degenerate,
    empty_panel,
    method_lines,
    number,
    pool,
    quality_columns,
    resolved_sentence,
    resolved_table,
    select_models,
    shared_legend,
    with_interval,
)
from unmask.figures.records import Run
from unmask.figures.tables import Table, format_value, pyplot, save_figure

NAME = "fig_model_panels"
TITLE = "The main samplers on the shipped models: three seeds per point, the data and the model's own law"
COMPUTED = False
NEEDS = (
    "unmask-eval runs with a budget (conf/sampler/ presets) at several seeds on model=mnist and/or "
    "model=shakespeare, and the own_law runs (sampler=random budget=length variant=own_law)"
)
RUNTIME = "about 65 min"
SHARED: tuple[str, ...] = ()  # the runs differ in their seed; num_samples is still checked
OWN_LAW = "own_law"
# per model: the columns pooled over seeds (the first is the one the panels rank by)
POOLED = {
    "mnist": ("fid", "label_entropy_bits"),
    "shakespeare": ("bits_per_char", "gen_ppl", "entropy_bits", "distinct_2", "distinct_4"),
}
DATA_LINES = {"mnist": "fid_floor", "shakespeare": "bits_per_char_floor"}
RUN_COLUMNS = [
    "model",
    "method",
    "steps",
    "seed",
    "nfe",
    "fid",
    "fid_stderr",
    "fid_floor",
    "fid_floor_stderr",
    "label_entropy_bits",
    "bits_per_char",
    "bits_per_char_stderr",
    "bits_per_char_floor",
    "bits_per_char_floor_stderr",
    "gen_ppl",
    "gen_ppl_stderr",
    "entropy_bits",
    "distinct_2",
    "distinct_2_stderr",
    "distinct_4",
    "distinct_4_stderr",
    "num_samples",
    "seconds",
]


def select(runs: list[Run]) -> list[Run]:
    return [r for r in select_models(runs, NAME) if r.budget is not None]


def point(run: Run) -> tuple:
    return (f"model={run.model}", f"method={run.label}", f"steps={run.budget}", f"seed={run.get('seed')}")


def run_row(run: Run) -> dict:
    m = run.metrics
    return {
        "model": run.model,
        "method": run.label,
        "steps": run.budget,
        "seed": run.get("seed"),
        **quality_columns(run),
        **{f"distinct_{n}": number(m.get(f"distinct_{n}")) for n in (2, 4)},
        **{f"distinct_{n}_stderr": number(m.get(f"distinct_{n}_stderr")) for n in (2, 4)},
    }


def pooled_rows(rows: list[dict]) -> list[dict]:
    """One row per (model, method, steps): each ``POOLED`` column's mean over the seeds with
    ``_stderr`` (the larger error), ``_within_se``, ``_seed_se`` and ``_seed_ratio``."""
    out = []
    keys = sorted({(r["model"], r["method"], r["steps"]) for r in rows}, key=lambda k: (k[0], k[2], k[1]))
    for model, method, steps in keys:
        mine = [r for r in rows if (r["model"], r["method"], r["steps"]) == (model, method, steps)]
        row = {
            "model": model,
            "method": method,
            "steps": steps,
            "seeds": len(mine),
            "nfe": statistics.fmean(r["nfe"] for r in mine),
            "num_samples": mine[0]["num_samples"],
        }
        for column in POOLED.get(model, ()):
            p = pool([r[column] for r in mine], [r.get(f"{column}_stderr", math.nan) for r in mine])
            row |= {
                column: p["mean"],
                f"{column}_stderr": p["stderr"],
                f"{column}_within_se": p["within"],
                f"{column}_seed_se": p["seeds"],
                f"{column}_seed_ratio": p["ratio"],
            }
        out.append(row)
    return out


def collect(runs: list[Run]) -> list[Table]:
    rows = sorted(
        (run_row(r) for r in runs), key=lambda r: (r["model"], r["steps"], str(r["method"]), r["seed"])
    )
    per_run = Table(NAME, TITLE, RUN_COLUMNS, rows)
    pooled = pooled_rows(rows)
    return [
        per_run,
        pooled_table(pooled, rows),
        resolved_with_seeds(pooled, rows),
        own_law_table(pooled),
        data_lines_table(rows),
    ]


def pooled_table(pooled: list[dict], rows: list[dict]) -> Table:
    columns = ["model", "method", "steps", "seeds", "nfe", "num_samples"]
    for model in POOLED:
        first, *others = POOLED[model]
        columns += [first, f"{first}_stderr", f"{first}_within_se", f"{first}_seed_se", f"{first}_seed_ratio"]
        columns += [c for other in others for c in (other, f"{other}_stderr")]
    columns = list(dict.fromkeys(columns))
    ratios = []
    for model, keys in POOLED.items():
        values = [r[f"{keys[0]}_seed_ratio"] for r in pooled if r["model"] == model]
        values = [v for v in values if math.isfinite(v)]
        if values:
            ratios.append(f"{model} {keys[0]}: {statistics.fmean(values):.2f} over {len(values)} points")
    return Table(
        "pooled",
        "Pooled over seeds: mean, standard error (the larger of the runs' own and the seeds' spread)",
        columns,
        pooled,
        note=(
            "_within_se: sqrt(sum se_i^2) / k from the runs' own standard errors; _seed_se: sd / sqrt(k) "
            "from the seeds' spread; _stderr: the larger. _seed_ratio: sd^2 / mean(se_i^2), about 1 where "
            "the runs' standard errors are right (mean over the points: "
            f"{'; '.join(ratios) or 'no point with two seeds'})."
        ),
    )


def resolved_with_seeds(pooled: list[dict], rows: list[dict]) -> Table:
    """``resolved_table`` on the pooled rows (own law apart), with ``order_in_every_seed``: for
    each pair resolved worse than the best, the number of seeds in which it is also worse."""
    table = resolved_table([r for r in pooled if r["method"] != OWN_LAW], "method", ("steps",))
    table.columns.append("order_in_every_seed")
    for out in table.rows:
        model, key = out["model"], RESOLVED_METRICS[out["model"]][0]
        worse = [] if out["resolved_worse"] == "none" else out["resolved_worse"].split(", ")
        seeds = sorted({r["seed"] for r in rows if r["model"] == model and r["steps"] == out["steps"]})
        failures = []
        for method in worse:
            held = 0
            for seed in seeds:
                here = {
                    r["method"]: r[key]
                    for r in rows
                    if r["model"] == model and r["steps"] == out["steps"] and r["seed"] == seed
                }
                held += here.get(method, math.nan) > here.get(out["best"], math.nan)
            if held < len(seeds):
                failures.append(f"{method} worse than {out['best']} in {held}/{len(seeds)} seeds")
        out["order_in_every_seed"] = (
            "; ".join(failures)
            if failures
            else (f"yes ({len(seeds)} seeds)" if worse else "no resolved pair")
        )
    return table


def own_law_table(pooled: list[dict]) -> Table:
    """Each method's difference to the model's own law (``method - own_law``) by the ranked
    metric, with its standard error and the verdict at 2 standard errors."""
    table = Table(
        "own_law",
        "Against the model's own law (untempered, random order, one token per call)",
        [
            "model",
            "method",
            "steps",
            "metric",
            "value",
            "own_law",
            "difference",
            "difference_stderr",
            "verdict",
        ],
        note=(
            "difference = method - own law (lower is better in both metrics); verdict at 2 standard errors "
            "of the difference. Text below the own law is colder than the model, not a better text model "
            "(see the entropy and distinct-n columns of the pooled table)."
        ),
    )
    for model, (key, what) in RESOLVED_METRICS.items():
        reference = [r for r in pooled if r["model"] == model and r["method"] == OWN_LAW]
        if not reference:
            continue
        ref = reference[0]
        for r in pooled:
            if r["model"] != model or r["method"] == OWN_LAW:
                continue
            diff = r[key] - ref[key]
            se = math.hypot(r[f"{key}_stderr"], ref[f"{key}_stderr"])
            if not (math.isfinite(diff) and math.isfinite(se)):
                verdict = "no interval"
            elif degenerate(r, model):
                verdict = f"degenerate (entropy < {DEGENERATE_ENTROPY_BITS[model]})"
            elif abs(diff) <= 2 * se:
                verdict = "not resolved"
            else:
                verdict = "below the own law" if diff < 0 else "above the own law"
            table.rows.append(
                {
                    "model": model,
                    "method": r["method"],
                    "steps": r["steps"],
                    "metric": what,
                    "value": r[key],
                    "own_law": ref[key],
                    "difference": diff,
                    "difference_stderr": se,
                    "verdict": verdict,
                }
            )
    return table


def data_lines_table(rows: list[dict]) -> Table:
    table = Table(
        "data_lines",
        "The data at the same n, one draw per seed",
        ["model", "metric", "mean", "stderr", "within_se", "seed_se", "per_seed"],
        note="MNIST: FID of n validation images; Shakespeare: judge bits per character of n held-out "
        "windows.",
    )
    for model, key in DATA_LINES.items():
        line = data_line(rows, DATA_LINES[model])
        if line is None:
            continue
        table.rows.append(
            {
                "model": model,
                "metric": key,
                "mean": line["mean"],
                "stderr": line["stderr"],
                "within_se": line["within"],
                "seed_se": line["seeds"],
                "per_seed": ", ".join(
                    f"seed {seed}: {with_interval({'v': v, 'v_stderr': e}, 'v')}"
                    for seed, (v, e) in line["draws"].items()
                ),
            }
        )
    return table


PANELS = [
    ("mnist", "fid", "MNIST: domain FID (lower is better)", True),
    ("shakespeare", "bits_per_char", "Shakespeare: judge bits/char (SmolLM2)", True),
    ("shakespeare", "entropy_bits", "Shakespeare: per-sample entropy (bits)", False),
    ("shakespeare", "distinct_4", "Shakespeare: distinct-4 across samples", False),
]


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    from matplotlib import colormaps

    plt = pyplot()
    per_run, pooled, resolved = tables[0], tables[1], tables[2]
    methods = [m for m in dict.fromkeys(r["method"] for r in pooled.rows) if m != OWN_LAW]
    colors = {m: colormaps["tab10"](i % 10) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(PANELS), figsize=(18, 5.8))
    for ax, (model, key, title, ranked) in zip(axes, PANELS, strict=True):
        ax.set_title(title)
        picked = [r for r in pooled.rows if r["model"] == model]
        if not picked:
            empty_panel(ax, f"no runs of model={model}")
            continue
        method_lines(ax, picked, methods, key, colors)
        for r in (r for r in picked if r["method"] == OWN_LAW):
            reference_line(
                ax, r[key], r.get(f"{key}_stderr", math.nan), "black", "-.", f"own law (T = L = {r['steps']})"
            )
        if ranked:  # the ranked metric is the one with a data line
            draw_data_line(
                ax, data_line(per_run.rows, DATA_LINES[model]), model, [r[key] for r in picked], title
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("NFE (denoiser calls)")
        if ranked:
            sentences = [
                textwrap.fill(
                    f"{resolved_sentence(r, str(r['steps']) + ' steps')}; same order in each seed: "
                    f"{r['order_in_every_seed']}",
                    70,
                )
                for r in resolved.where(model=model)
            ]
            ax.text(
                0,
                -0.16,
                "Resolved at 2 se:\n" + "\n".join(sentences),
                transform=ax.transAxes,
                va="top",
                fontsize=6,
            )
    shared_legend(fig, axes, 9)
    counts = ", ".join(
        f"{r['model']} n = {r['num_samples']} x {r['seeds']} seeds" for r in summary_counts(pooled.rows)
    )
    fig.suptitle(
        f"Samplers at 4, 8, 16 calls ({counts}; bands: 95%, the larger of the runs' and the seeds' error)",
        fontsize=10,
        y=1.06,
    )
    return save_figure(fig, out_dir, NAME)


def draw_data_line(ax: Any, line: dict | None, model: str, values: list[float], title: str) -> None:
    """The data at the same n: a dotted line with its band and one x per seed's draw, or, where it
    sits far below the samplers (MNIST's FID floor), its value and spread in the panel's title,
    so that the samplers' differences keep the axis."""
    if line is None:
        return
    what = "real images" if model == "mnist" else "real text"
    drawn = [v for v in values if math.isfinite(v)]
    seeds = ", ".join(format_value(v) for v, _ in line["draws"].values())
    if drawn and line["mean"] < 0.5 * min(drawn):
        ax.set_title(
            f"{title}\n{what}, same n: {format_value(line['mean'])} ± {format_value(Z95 * line['stderr'])} "
            f"(seeds: {seeds})"
        )
        return
    reference_line(ax, line["mean"], line["stderr"], "0.3", ":", f"{what}, same n (each seed: x)")
    xs = [4] * len(line["draws"])
    ax.scatter(xs, [v for v, _ in line["draws"].values()], marker="x", color="0.3", s=14)


def summary_counts(rows: list[dict]) -> list[dict]:
    seen: dict[str, dict] = {}
    for r in rows:
        seen.setdefault(r["model"], r)
    return list(seen.values())


def reference_line(ax: Any, value: float, stderr: float, color: Any, style: str, label: str) -> None:
    if not math.isfinite(value):
        return
    ax.axhline(value, color=color, lw=1, ls=style, label=label)
    if math.isfinite(stderr):
        ax.axhspan(value - Z95 * stderr, value + Z95 * stderr, color=color, alpha=0.1, lw=0)
