"""fig_equivalence: one MaskGIT step against one moment-sampler step, exactly.

docs/THEORY.md section 2: for k = 1 the law of the (position, token) that one MaskGIT step reveals
tends to the moment sampler's ``p_i(v)**beta / sum_j m_j(beta)`` as the number N of masked
positions grows, the total variation shrinking like 1/N. Both laws are exact here (MaskGIT's by
quadrature, ``unmask.metrics.laws``), so the curves carry no sampling noise. Predictions come
from two sources: rows drawn from a Dirichlet(``concentration``) (the check quoted in docs/THEORY.md)
and an exact oracle, an image-like ``ProductMixture`` on a 32 x 32 grid, at an exact sample with
N random positions masked (its exact conditionals given the other 1024 - N).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from unmask.figures.records import Run
from unmask.figures.tables import Table, pyplot, save_figure

NAME = "fig_equivalence"
TITLE = "One-step total variation between MaskGIT and the moment sampler against N (k = 1)"
COMPUTED = True
NEEDS = "its computed record (results.json written by `unmask-figures fig_equivalence`)"
RUNTIME = "about 1 min"
COLUMNS = ["law", "alpha", "N", "tv", "tv_min", "tv_max", "draws"]


def oracle_rows(n: int, draw: int, settings: dict) -> torch.Tensor:
    from unmask.models.oracle import ProductMixture

    side = settings["oracle_side"]
    oracle = ProductMixture.image_like(side, side, vocab_size=settings["vocab_size"], seed=settings["seed"])
    g = torch.Generator().manual_seed(settings["seed"] * 1000 + draw)
    x = oracle.sample(1, g)
    masked = torch.randperm(oracle.seq_len, generator=g)[:n]
    x[0, masked] = oracle.mask_id
    return oracle.conditionals(x)[0, masked].exp()


def compute(settings: dict) -> dict:
    """Exact TV for every (law, alpha, N) and draw; the fitted log-log slopes."""
    from unmask.metrics.laws import dirichlet_rows, maskgit_one_step_law, moment_one_step_law

    rows = []
    for law in settings["laws"]:
        for alpha in settings["alphas"]:
            for n in settings["sizes"]:
                if law == "mixture" and n > settings["oracle_side"] ** 2:
                    continue
                tvs = []
                for draw in range(settings["draws"]):
                    if law == "dirichlet":
                        g = torch.Generator().manual_seed(settings["seed"] * 1000 + 7 * n + draw)
                        p = dirichlet_rows(n, settings["vocab_size"], settings["concentration"], g)
                    else:
                        p = oracle_rows(n, draw, settings)
                    exact = maskgit_one_step_law(p, alpha=alpha, grid_points=settings["grid_points"])
                    moment = moment_one_step_law(p, beta=1.0 + 1.0 / alpha)
                    tvs.append(0.5 * float((exact - moment).abs().sum()))
                rows.append(
                    {
                        "law": law,
                        "alpha": alpha,
                        "N": n,
                        "tv": sum(tvs) / len(tvs),
                        "tv_min": min(tvs),
                        "tv_max": max(tvs),
                        "draws": len(tvs),
                    }
                )
    return {
        "tv": {"columns": COLUMNS, "rows": rows},
        "slopes": {"columns": SLOPE_COLUMNS, "rows": slopes(rows, settings)},
    }


SLOPE_COLUMNS = ["law", "alpha", "slope", "fit_from_N", "tv_at_largest_N"]


def slopes(rows: list[dict], settings: dict) -> list[dict]:
    """Least-squares slope of log TV on log N over N >= ``fit_from``, per (law, alpha)."""
    out = []
    for law in settings["laws"]:
        for alpha in settings["alphas"]:
            pts = [
                (math.log(r["N"]), math.log(r["tv"]))
                for r in rows
                if r["law"] == law and r["alpha"] == alpha and r["N"] >= settings["fit_from"] and r["tv"] > 0
            ]
            if len(pts) < 2:
                continue
            mx = sum(x for x, _ in pts) / len(pts)
            my = sum(y for _, y in pts) / len(pts)
            slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
            largest = max((r for r in rows if r["law"] == law and r["alpha"] == alpha), key=lambda r: r["N"])
            out.append(
                {
                    "law": law,
                    "alpha": alpha,
                    "slope": slope,
                    "fit_from_N": settings["fit_from"],
                    "tv_at_largest_N": largest["tv"],
                }
            )
    return out


def select(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.kind == "computed" and r.payload.get("figure") == NAME]


def point(run: Run) -> tuple:
    return (run.source,)


def collect(runs: list[Run]) -> list[Table]:
    tables = runs[0].payload["tables"]
    settings = runs[0].config["figure"]
    note = (
        f"V = {settings['vocab_size']}; dirichlet: Dirichlet({settings['concentration']}) rows; mixture: "
        f"ProductMixture oracle on a {settings['oracle_side']} x {settings['oracle_side']} grid, N positions "
        f"masked at an exact sample; mean over {settings['draws']} draws."
    )
    return [
        Table(NAME, TITLE, tables["tv"]["columns"], tables["tv"]["rows"], note=note),
        Table(
            "slopes",
            "Fitted log-log slopes of TV against N",
            tables["slopes"]["columns"],
            tables["slopes"]["rows"],
        ),
    ]


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    plt = pyplot()
    from unmask.figures.common import alpha_colors

    rows, slope_rows = tables[0].rows, tables[1].rows
    laws = list(dict.fromkeys(r["law"] for r in rows))
    fig, axes = plt.subplots(1, len(laws), figsize=(5 * len(laws), 4), squeeze=False)
    colors = alpha_colors(r["alpha"] for r in rows)
    titles = {"dirichlet": "Dirichlet rows", "mixture": "ProductMixture oracle (exact conditionals)"}
    for ax, law in zip(axes[0], laws, strict=True):
        for alpha in dict.fromkeys(r["alpha"] for r in rows):
            pts = sorted(
                (r["N"], r["tv"], r["tv_min"], r["tv_max"])
                for r in rows
                if r["law"] == law and r["alpha"] == alpha
            )
            if not pts:
                continue
            n, tv, lo, hi = zip(*pts, strict=True)
            slope = next(
                (s["slope"] for s in slope_rows if s["law"] == law and s["alpha"] == alpha), math.nan
            )
            ax.plot(
                n,
                tv,
                marker="o",
                markersize=3,
                color=colors[alpha],
                label=f"alpha = {alpha:g} (slope {slope:.2f})",
            )
            ax.fill_between(n, lo, hi, color=colors[alpha], alpha=0.15, linewidth=0)
        ref_n = sorted({r["N"] for r in rows if r["law"] == law})
        if ref_n:
            anchor = max(r["tv"] for r in rows if r["law"] == law and r["N"] == ref_n[0])
            ax.plot(ref_n, [anchor * ref_n[0] / n for n in ref_n], color="0.5", linestyle=":", label="1 / N")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("N (masked positions)")
        ax.set_ylabel("TV(MaskGIT step, moment step)")
        ax.set_title(titles.get(law, law))
        ax.legend()
    fig.suptitle("One step, k = 1: exact total variation between MaskGIT and the moment sampler", fontsize=10)
    return save_figure(fig, out_dir, NAME)
